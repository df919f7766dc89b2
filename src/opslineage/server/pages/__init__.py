"""The web pages of ``opslineage serve``: server-rendered HTML on the same read path, access
control and access audit as the API, enhanced by small scripts of our own (no CDN, no request
leaves the server's origin).

:func:`add_pages` adds the routes; :mod:`.sessions` owns sign-in, sessions and CSRF;
:mod:`.render` the templates, the security headers and the HTML error pages.
"""

from opslineage.server.pages.render import is_page, page_error
from opslineage.server.pages.routes import add_pages
from opslineage.server.pages.sessions import SESSION_COOKIE, Sessions

__all__ = ["SESSION_COOKIE", "Sessions", "add_pages", "is_page", "page_error"]
