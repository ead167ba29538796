"""Placeholder: the procgen family is being written."""


def families() -> list:
    return []
