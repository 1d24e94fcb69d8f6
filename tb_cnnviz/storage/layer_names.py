"""Layers named by their path ("outer/inner" inside nested models) or by an unambiguous short name."""


class UnknownLayer(KeyError):
    """A layer name that matches no path, or several (`ambiguous`); `valid` lists the paths."""

    def __init__(self, name: str, valid: list, ambiguous: list):
        super().__init__(name)
        self.name, self.valid, self.ambiguous = name, list(valid), list(ambiguous)

    def __str__(self):
        if self.ambiguous:
            return f"layer {self.name!r} is ambiguous; give its full path, one of: {self.ambiguous}"
        return f"layer {self.name!r} not logged; choose one of {self.valid}"


def resolve_layer(name: str, paths) -> str:
    """The path among `paths` of a full layer path or an unambiguous short name (the part after
    the last '/'). Raises UnknownLayer."""
    paths = list(paths)
    if name in paths:
        return name
    matches = [path for path in paths if path.rsplit("/", 1)[-1] == name]
    if len(matches) != 1:
        raise UnknownLayer(name, paths, matches)
    return matches[0]


