from django.apps import AppConfig


class SyncopsConfig(AppConfig):
    name = "syncops"
    verbose_name = "CardTrader sync"

    def ready(self) -> None:
        from brxsync import lookups  # noqa: F401 - registers ``__any`` on every field
