"""{{name_snake}}(text): a Sluice user-defined function. Replace the body with yours."""

import sluice


@sluice.udf
def {{name_snake}}(text):
    """The arguments come as JSON values (None, bool, int, float, str, list, dict);
    return one. An exception dead-letters the event whose expression made the call."""
    if text is None:
        return None  # SQL's rule for scalar functions: null in, null out
    if not isinstance(text, str):
        raise ValueError(f"{{name_snake}}(text) takes a string, found {type(text).__name__}")
    return text[::-1]
