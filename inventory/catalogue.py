"""Ebartex's print tables in the read-only MySQL catalogue (the ``blueprints`` alias).

``managed = False`` and ``catalogue = True``: Django never migrates them and the router sends
every query to the catalogue and refuses every write. Each table maps a CardTrader blueprint
(``cardtrader_id``) to an Ebartex print ``id``.
"""
from __future__ import annotations

from django.db import models


class Blueprint(models.Model):
    catalogue = True
    id = models.BigIntegerField(primary_key=True)
    cardtrader_id = models.IntegerField(null=True, db_index=True)
    name = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        abstract = True
        managed = False

    def __str__(self) -> str:
        return f"{self._meta.db_table}#{self.id} (CardTrader {self.cardtrader_id})"


class CardPrint(Blueprint):
    class Meta(Blueprint.Meta):
        abstract = False
        managed = False
        db_table = "cards_prints"


class OnePiecePrint(Blueprint):
    class Meta(Blueprint.Meta):
        abstract = False
        managed = False
        db_table = "op_prints"


class PokemonPrint(Blueprint):
    class Meta(Blueprint.Meta):
        abstract = False
        managed = False
        db_table = "pk_prints"


class SealedProduct(Blueprint):
    class Meta(Blueprint.Meta):
        abstract = False
        managed = False
        db_table = "sealed_products"


# Searched in this order; the first table holding a blueprint wins.
PRINT_MODELS: tuple[type[Blueprint], ...] = (CardPrint, OnePiecePrint, PokemonPrint, SealedProduct)
