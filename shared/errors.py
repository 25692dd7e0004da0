"""Domain errors that the gRPC adapters turn into status codes; logic raises these, never grpc errors."""


class RequestError(Exception):
    """Base of errors caused by the caller's request."""


class InvalidRequest(RequestError):
    """Bad input: maps to INVALID_ARGUMENT."""


class NotFound(RequestError):
    """The thing asked about does not exist: maps to NOT_FOUND."""


class Overloaded(RequestError):
    """Too much work queued already or a request too large: maps to RESOURCE_EXHAUSTED."""


class Unavailable(Exception):
    """A dependency (model, store, encoder) is not ready: maps to UNAVAILABLE."""


class RetryLater(Exception):
    """A failure that says nothing about the entry being processed (contention, a busy dependency).

    Stream consumers retry such an entry without counting the failure against it.
    """
