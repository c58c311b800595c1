"""mask_email(email): a user-defined function in Python.

Register it and call it from an expression::

    udfs:
      mask_email: { plugin: ./mask_email_py.wasm }
    stages:
      masked:
        plugin: project
        inputs: [users]
        params:
          set: { email: "mask_email(email)" }

or in SQL: ``CREATE FUNCTION mask_email AS './mask_email_py.wasm';``.

``None`` gives ``None`` (SQL's rule for scalar functions). A value that is not a
string, or a string without exactly one ``@`` and a non-empty local part, is an
error: the event that made the call is dead-lettered with the reason.
"""

import sluice


@sluice.udf
def mask_email(email):
    """'ada@example.com' -> 'a***@example.com'."""
    if email is None:
        return None
    if not isinstance(email, str):
        raise ValueError(f"mask_email(email) takes a string, found {type(email).__name__}")
    local, at, domain = email.partition("@")
    if not at or not local or not domain or "@" in domain:
        raise ValueError(f"not an email address: {email!r}")
    return f"{local[0]}***@{domain.lower()}"
