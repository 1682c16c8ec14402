"""What the store refuses, and why.

::

    StromError
     └── StoreError                   (500)
          ├── DatabaseUnavailable     (503) cannot connect, or the connection broke
          ├── SchemaOutOfDate         (503) the database needs ``strom db upgrade``
          ├── NotFound                (404)
          │    └── UnknownUser
          ├── Conflict                (409)
          │    ├── UsernameTaken
          │    ├── CategoryExists
          │    ├── LastAdmin
          │    └── TooManyTokens
          └── InvalidInput            (422) carries the form ``field`` it is about
               ├── InvalidUsername
               ├── WeakPassword
               ├── InvalidChannel
               ├── InvalidCategory
               └── UnknownCategory

``http_status`` is the HTTP status a web handler answers with; the message is safe to show to
the user who made the request (it never contains a secret).
"""

from __future__ import annotations

from strom.errors import StromError


class StoreError(StromError):
    http_status = 500


class DatabaseUnavailable(StoreError):
    http_status = 503


class SchemaOutOfDate(StoreError):
    http_status = 503


class NotFound(StoreError):
    http_status = 404


class UnknownUser(NotFound):
    def __init__(self, username: str) -> None:
        super().__init__(f"no user called {username!r}")
        self.username = username


class Conflict(StoreError):
    http_status = 409


class UsernameTaken(Conflict):
    def __init__(self, username: str) -> None:
        super().__init__(f"the username {username!r} is taken")
        self.username = username


class CategoryExists(Conflict):
    pass


class LastAdmin(Conflict):
    """The site would be left without an administrator."""


class TooManyTokens(Conflict):
    pass


class InvalidInput(StoreError):
    http_status = 422

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class InvalidUsername(InvalidInput):
    def __init__(self, message: str) -> None:
        super().__init__(message, "username")


class WeakPassword(InvalidInput):
    def __init__(self, message: str) -> None:
        super().__init__(message, "password")


class InvalidChannel(InvalidInput):
    pass


class InvalidCategory(InvalidInput):
    pass


class UnknownCategory(InvalidInput):
    def __init__(self, slug: str) -> None:
        super().__init__(f"no category {slug!r}", "category")
        self.slug = slug
