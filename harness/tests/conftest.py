from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture
def data() -> Path:
    return DATA


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests never touch the real ~/.cache/memcg-bpf."""
    monkeypatch.setenv("MEMCG_BPF_CACHE", str(tmp_path / "cache"))
