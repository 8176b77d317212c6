"""Instrument specs: validation errors name file and field; shipped specs build instruments."""

from decimal import Decimal

import pytest
from nautilus_trader.model.instruments import CryptoPerpetual
from nautilus_trader.model.instruments import CurrencyPair
from nautilus_trader.model.instruments import Equity
from nautilus_trader.model.instruments import FuturesContract

from catalogs.specs import SPECS_DIR
from catalogs.specs import load_instrument_spec
from grodt.core.errors import ConfigError


def _write(tmp_path, text):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


def test_equity_spec_builds_a_share_level_equity(spec_file):
    instrument = load_instrument_spec(spec_file).to_instrument()
    assert isinstance(instrument, Equity)
    assert str(instrument.id) == "TEST.XNAS"
    assert instrument.price_precision == 2
    assert instrument.lot_size == 1
    assert instrument.taker_fee == Decimal("0.0001")


@pytest.mark.parametrize(
    ("name", "cls", "instrument_id"),
    [
        ("btcusdt_perp_binance.yaml", CryptoPerpetual, "BTCUSDT-PERP.BINANCE"),
        ("6eh4_xcme.yaml", FuturesContract, "6EH4.XCME"),
        ("fesx_2006_sample.yaml", FuturesContract, "FESX.SAMPLE"),
        ("eurusd_fx.yaml", CurrencyPair, "EUR/USD.SIM"),
        ("spx_sample.yaml", Equity, "SPX.SAMPLE"),
        ("ixic_sample.yaml", Equity, "IXIC.SAMPLE"),
        ("example_equity.yaml", Equity, "SPY.XNAS"),
    ],
)
def test_shipped_specs_build_their_nautilus_class(name, cls, instrument_id):
    instrument = load_instrument_spec(SPECS_DIR / name).to_instrument()
    assert isinstance(instrument, cls)
    assert str(instrument.id) == instrument_id


def test_future_spec_carries_multiplier_and_expiry():
    future = load_instrument_spec(SPECS_DIR / "6eh4_xcme.yaml").to_instrument()
    assert future.multiplier == 125_000
    assert str(future.price_increment) == "0.00005"
    assert future.expiration_ns > future.activation_ns


def test_unknown_key_names_file_and_field(tmp_path):
    path = _write(tmp_path, "kind: equity\nid: A.B\ncurrency: USD\nprice_precision: 2\nlot: 1\n")
    with pytest.raises(ConfigError, match=r"spec\.yaml: lot: Extra inputs are not permitted"):
        load_instrument_spec(path)


def test_wrong_type_names_the_field(tmp_path):
    path = _write(tmp_path, "kind: equity\nid: A.B\ncurrency: USD\nprice_precision: two\n")
    with pytest.raises(ConfigError, match="price_precision"):
        load_instrument_spec(path)


def test_equity_size_precision_must_be_zero(tmp_path):
    text = "kind: equity\nid: A.B\ncurrency: USD\nprice_precision: 2\nsize_precision: 2\n"
    with pytest.raises(ConfigError, match="size_precision"):
        load_instrument_spec(_write(tmp_path, text))


def test_unknown_kind_and_currency_and_timezone(tmp_path):
    with pytest.raises(ConfigError, match="kind"):
        load_instrument_spec(_write(tmp_path, "kind: bond\nid: A.B\n"))
    text = "kind: equity\nid: A.B\ncurrency: QQQZ\nprice_precision: 2\n"
    with pytest.raises(ConfigError, match="currency 'QQQZ'"):
        load_instrument_spec(_write(tmp_path, text))
    text = "kind: equity\nid: A.B\ncurrency: USD\nprice_precision: 2\ntimezone: Mars/Base\n"
    with pytest.raises(ConfigError, match="timezone"):
        load_instrument_spec(_write(tmp_path, text))


def test_increment_finer_than_precision_is_rejected(tmp_path):
    text = "kind: equity\nid: A.B\ncurrency: USD\nprice_precision: 2\nprice_increment: 0.005\n"
    with pytest.raises(ConfigError, match="price_increment"):
        load_instrument_spec(_write(tmp_path, text))


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_instrument_spec(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_instrument_spec(_write(tmp_path, "kind: [equity\n"))


def test_bar_type_uses_price_type(spec_file):
    assert load_instrument_spec(spec_file).bar_type("1-MINUTE") == (
        "TEST.XNAS-1-MINUTE-LAST-EXTERNAL"
    )
