from django.apps import AppConfig


class SyncopsConfig(AppConfig):
    name = "syncops"
    verbose_name = "CardTrader sync"
