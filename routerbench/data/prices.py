"""Price tables: US dollars per 1M input and output tokens of each LLM, with a date and a source.

``configs/prices/<name>.yaml``::

    date: 2025-02-06
    source: https://...             # where the prices were read
    unit: USD per 1M tokens
    prices:
      openai-gpt-4o: {input: 2.5, output: 10.0}
      openai-gpt-4o-mini: {input: 0.15, output: 0.6}

Where a data set has token counts (``ScoreTable.tokens``: SPROUT, xRouteBench, LLMRouterBench),
the cost of a cell is ``input_tokens x input / 1e6 + output_tokens x output / 1e6``. A data config
names the table (``prices: NAME``, a path, or the ``prices`` mapping inline); ``--prices`` on the
command line (``data.prices=NAME`` for fit) overrides it. An LLM of the data without a price is
an error naming it. ``data.costs`` (one price per query) is the other, older way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from routerbench.data.table import ScoreTable
from routerbench.errors import DataError

KEYS = ("date", "source", "unit", "prices")
UNIT = "USD per 1M tokens"


@dataclass(frozen=True)
class PriceTable:
    """``prices``: LLM -> (input, output) dollars per 1M tokens; ``name`` says where it came from."""

    prices: dict[str, tuple[float, float]]
    date: str
    source: str
    name: str


def price_file(name: str) -> Path:
    """``configs/prices/<name>.yaml``, or ``name`` itself when it is a path to a yaml."""
    from routerbench.paths import config_root

    p = Path(name)
    if p.suffix in (".yaml", ".yml"):
        return p
    return config_root() / "prices" / f"{name}.yaml"


def available() -> list[str]:
    from routerbench.paths import config_root

    return sorted(p.stem for p in (config_root() / "prices").glob("*.yaml"))


def load_prices(spec) -> PriceTable | None:
    """A PriceTable from a name, a yaml path, or a mapping (``{date, source, prices}`` or just
    ``{llm: {input, output}}``); None for None.

    Raises:
        DataError: naming the file (or ``data.prices``) and the field.
    """
    if spec is None or spec == "":
        return None
    if isinstance(spec, PriceTable):
        return spec
    if isinstance(spec, (str, Path)):
        import yaml

        path = price_file(str(spec))
        if not path.is_file():
            raise DataError.at(path, msg=f"price table not found; available: {', '.join(available()) or 'none'} "
                                         "(configs/prices/NAME.yaml) or a path to a yaml")
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            raise DataError.at(path, msg=f"malformed YAML: {e}") from None
        return _parse(doc, str(path))
    if isinstance(spec, dict):
        doc = spec if "prices" in spec else {"prices": spec, "date": "inline", "source": "inline"}
        return _parse(doc, "data.prices")
    raise DataError.at("data.prices", msg=f"expected a price table name, a yaml path or a mapping, got {spec!r:.60}")


def _parse(doc, where: str) -> PriceTable:
    if not isinstance(doc, dict):
        raise DataError.at(where, msg="expected a mapping with keys " + ", ".join(KEYS))
    for k in doc:
        if k not in KEYS:
            raise DataError.at(where, field=str(k), msg=f"unknown key; valid keys: {', '.join(KEYS)}")
    for k in ("date", "source", "prices"):
        if doc.get(k) in (None, ""):
            raise DataError.at(where, field=k, msg="missing (required: every price table says when and where "
                                                   "its prices were read)")
    if doc.get("unit", UNIT) != UNIT:
        raise DataError.at(where, field="unit", msg=f"must be {UNIT!r}, got {doc['unit']!r}")
    if not isinstance(doc["prices"], dict) or not doc["prices"]:
        raise DataError.at(where, field="prices", msg="expected a mapping {llm: {input: $, output: $}}")
    out = {}
    for llm, p in doc["prices"].items():
        field = f"prices.{llm}"
        if not isinstance(p, dict) or set(p) != {"input", "output"}:
            raise DataError.at(where, field=field, msg=f"expected {{input: $, output: $}} per 1M tokens, got {p!r:.60}")
        vals = []
        for k in ("input", "output"):
            v = p[k]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise DataError.at(where, field=f"{field}.{k}", msg=f"must be a number >= 0, got {v!r}")
            vals.append(float(v))
        out[str(llm)] = (vals[0], vals[1])
    return PriceTable(out, str(doc["date"]), str(doc["source"]), where)


def apply_prices(table: ScoreTable, prices, where) -> ScoreTable:
    """``table`` with ``costs`` from its token counts and ``prices`` (replacing file costs).

    Raises:
        DataError: the table has no token counts, or an LLM has no price (named).
    """
    pt = load_prices(prices)
    if pt is None:
        return table
    if table.tokens is None:
        raise DataError.at(where, field="prices", msg="prices need token counts, and this data has none "
                                                      "(data.costs sets one price per query instead)")
    missing = [m for m in table.llms if m not in pt.prices]
    if missing:
        raise DataError.at(pt.name, field="prices", msg=f"no price for LLM(s) {missing} of {where}; "
                                                        "add them to the price table")
    p = np.array([pt.prices[m] for m in table.llms], dtype=np.float64)  # [T, 2]
    costs = (table.tokens * p[None, :, :]).sum(-1) / 1e6
    note = (f"{where}: costs = tokens x prices of {pt.name} (dated {pt.date}, source {pt.source})"
            + ("; the file's own costs replaced" if table.costs is not None else ""))
    return replace(table, costs=costs.astype(np.float32), notes=list(table.notes) + [note])
