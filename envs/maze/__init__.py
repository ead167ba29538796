"""Placeholder: the maze family is being written."""


def families() -> list:
    return []
