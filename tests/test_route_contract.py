"""routerbench route loses nothing: ids and fields echoed, empty input refused, .json read as a
list, a bare string is one query (issue 22, item 6)."""

import json

import pytest

from conftest import FAST
from routerbench.api import load_router
from routerbench.cli import main
from routerbench.config import compose
from routerbench.runs.fit import fit


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("route")
    fit(compose(FAST + ["router=mlp", f"output_dir={tmp / 'run'}", f"cache_dir={tmp / 'cache'}"]))
    return str(tmp / "run" / "checkpoints" / "best.ckpt")


def test_jsonl_keeps_id_and_other_fields(ckpt, tmp_path):
    src = tmp_path / "q.jsonl"
    src.write_text(json.dumps({"id": "a1", "question": "solve x + 2 = 5", "split": "dev"}) + "\n"
                   + json.dumps({"id": 7, "text": "who won the battle of hastings"}) + "\n")
    out = tmp_path / "out.jsonl"
    assert main(["route", ckpt, str(src), "-o", str(out)]) == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["id"] for r in lines] == ["a1", 7]
    assert lines[0]["split"] == "dev" and "llm" in lines[0] and "index" in lines[1]


def test_json_list_is_read_as_queries(ckpt, tmp_path):
    src = tmp_path / "q.json"
    src.write_text(json.dumps([{"id": 1, "question": "integrate x^2"}, "a plain string query"]))
    out = tmp_path / "out.jsonl"
    assert main(["route", ckpt, str(src), "-o", str(out)]) == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 2 and lines[0]["id"] == 1
    assert not any(str(r.get("question", "")).startswith("[{") for r in lines)


def test_empty_input_is_an_error(ckpt, tmp_path, capsys):
    src = tmp_path / "empty.txt"
    src.write_text("\n  \n")
    assert main(["route", ckpt, str(src)]) == 2
    assert "no queries" in capsys.readouterr().err


def test_bare_string_is_one_query(ckpt):
    router = load_router(ckpt)
    one = router.route("what is 12 * 7?")
    assert len(one) == 1 and one == router.route(["what is 12 * 7?"])
    with pytest.raises(TypeError):
        router.route(12)
