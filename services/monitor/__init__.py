"""The monitor service: drift and anomalies of the stored vectors."""
