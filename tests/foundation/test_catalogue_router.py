"""The catalogue is read through the router, never written, never migrated."""
import pytest
from django.db import connections, router

from brxsync.routers import CATALOGUE_ALIAS, CatalogueWriteRefused
from inventory.catalogue import CardPrint, SealedProduct
from inventory.models import InventoryItem
from tests.catalogue_schema import load_prints

pytestmark = pytest.mark.django_db(databases=["default", "blueprints"])


def test_reads_go_to_the_catalogue():
    load_prints("cards_prints", [(501, 9001, "Black Lotus"), (502, 9002, "Mox Pearl")])
    assert router.db_for_read(CardPrint) == CATALOGUE_ALIAS
    assert dict(CardPrint.objects.values_list("cardtrader_id", "id")) == {9001: 501, 9002: 502}


def test_orm_writes_to_the_catalogue_are_refused():
    load_prints("sealed_products", [(1, 10, "Booster")])
    with pytest.raises(CatalogueWriteRefused):
        SealedProduct.objects.create(id=2, cardtrader_id=11, name="Box")
    with pytest.raises(CatalogueWriteRefused):
        SealedProduct.objects.filter(id=1).update(name="changed")
    assert list(SealedProduct.objects.values_list("name", flat=True)) == ["Booster"]


def test_the_catalogue_session_itself_is_read_only():
    """Even raw SQL on the alias is refused by MariaDB (SET SESSION TRANSACTION READ ONLY)."""
    load_prints("pk_prints", [(1, 77, "Pikachu")])
    with pytest.raises(Exception, match=r"(?i)read.only"), connections[CATALOGUE_ALIAS].cursor() as cur:
        cur.execute("UPDATE pk_prints SET name = 'x' WHERE id = 1")


def test_no_migration_ever_targets_the_catalogue():
    assert router.allow_migrate(CATALOGUE_ALIAS, "inventory") is False
    assert router.allow_migrate(CATALOGUE_ALIAS, "syncops", model_name="syncoperation") is False
    assert router.allow_migrate("default", "inventory", model=CardPrint) is False
    assert router.allow_migrate("default", "inventory", model=InventoryItem) is True
    with connections[CATALOGUE_ALIAS].cursor() as cur:
        cur.execute("SHOW TABLES")
        tables = {row[0] for row in cur.fetchall()}
    assert "django_migrations" not in tables
    assert not any(t.startswith(("inventory_", "syncops_", "brx_")) for t in tables)


def test_other_models_stay_on_default():
    assert router.db_for_read(InventoryItem) == "default"
    assert router.db_for_write(InventoryItem) == "default"
