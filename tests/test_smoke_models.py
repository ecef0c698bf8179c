import pytest
from django.db import IntegrityError, transaction

from inventory.models import InventoryItem


@pytest.mark.django_db
def test_negative_quantity_is_refused_by_the_database(seller):
    with pytest.raises(IntegrityError), transaction.atomic():
        InventoryItem.objects.create(seller=seller, product_id=1, blueprint_id=1, quantity=-1)
