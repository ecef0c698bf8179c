"""A service's refusal that a view does not catch still answers the envelope with its status."""
from brxsync.api.exceptions import api_exception_handler
from brxsync.errors import ServiceError
from inventory.services.edits import InsufficientStock
from syncops.services.connection import TokenInvalid


def test_uncaught_service_errors_render_their_status_code_and_details():
    response = api_exception_handler(TokenInvalid("CardTrader said: bad token", {"cardtrader": "401"}), {})
    assert response.status_code == 422
    assert response.data == {"error": {"code": "cardtrader_token_rejected", "message": "CardTrader said: bad token",
                                       "details": {"cardtrader": "401"}}}
    response = api_exception_handler(InsufficientStock("only 2 left"), {})
    assert response.status_code == 409 and response.data["error"]["code"] == "insufficient_stock"


def test_every_service_refusal_shares_the_one_base():
    assert issubclass(TokenInvalid, ServiceError) and issubclass(InsufficientStock, ServiceError)
