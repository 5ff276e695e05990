"""The app as the AppTest tests run it: the real shell around services a test built
(a temp index, a scripted LLM). A test puts them in ``SERVICES`` and starts
``AppTest.from_file`` on this file. (Not ``AppTest.from_function``: its script cannot carry
the guard below.)

The ``__main__`` guard keeps an import of this module (``from tests import ui_app`` below)
from running the app a second time.
"""

from __future__ import annotations

SERVICES: dict = {}


def main() -> None:
    from app.ui import admin, shell
    from tests import ui_app  # the imported module, where the test left the services

    services = ui_app.SERVICES["services"]
    if ui_app.SERVICES.get("documents_page_alone"):  # as if its URL were opened directly
        admin.render(services)
    else:
        shell.run(services)


if __name__ == "__main__":
    main()
