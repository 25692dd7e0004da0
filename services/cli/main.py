def main() -> None:
    print("recsys")
