"""Per-project secrets: random, private, idempotent, destroyable."""

from __future__ import annotations

import hashlib
import json
import stat

import pytest

from enclave.errors import BadInput, NotFound
from enclave.prepare.secrets import (
    SECRETS_FILE,
    create_secrets,
    destroy_secrets,
    load_secrets,
    secrets_dir,
)


def test_create_is_private_and_idempotent(paths):
    first = create_secrets(paths, "cardio-2026")
    again = create_secrets(paths, "cardio-2026", per_person_offset=True)
    assert again == first and not again.per_person_offset  # existing secrets are kept
    assert len(first.pseudonym_key) == 32
    assert 30 <= abs(first.date_offset_days) <= 365
    folder = secrets_dir(paths, "cardio-2026")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / SECRETS_FILE).stat().st_mode) == 0o600
    assert [p.name for p in folder.iterdir()] == [SECRETS_FILE]  # no temp files left behind
    assert load_secrets(paths, "cardio-2026") == first


def test_offsets_and_keys_are_random_per_project(paths):
    made = [create_secrets(paths, f"p-{i:02d}") for i in range(40)]
    offsets = [s.date_offset_days for s in made]
    assert all(o != 0 and 30 <= abs(o) <= 365 for o in offsets)
    assert any(o < 0 for o in offsets) and any(o > 0 for o in offsets)
    assert len(set(offsets)) > 20
    assert len({s.pseudonym_key for s in made}) == 40


def test_repr_never_shows_the_secrets(paths):
    secret = create_secrets(paths, "cardio-2026")
    text = repr(secret) + str(secret)
    assert secret.pseudonym_key.hex() not in text and str(secret.date_offset_days) not in text


def test_load_missing_and_corrupt(paths):
    with pytest.raises(NotFound) as missing:
        load_secrets(paths, "cardio-2026")
    assert missing.value.code == "project_secrets_not_found"
    create_secrets(paths, "cardio-2026")
    path = secrets_dir(paths, "cardio-2026") / SECRETS_FILE
    record = json.loads(path.read_text())
    for broken in ({**record, "pseudonym_key": "abcd"}, {**record, "date_offset_days": 0}, [1], "x"):
        path.write_text(json.dumps(broken))
        with pytest.raises(BadInput) as error:
            load_secrets(paths, "cardio-2026")
        assert error.value.code == "project_secrets_corrupt"


def test_project_ids_cannot_escape_the_secrets_folder(paths):
    for bad in ("../x", "a/b", "", "UPPER", "."):
        with pytest.raises(BadInput):
            create_secrets(paths, bad)


def test_destroy_overwrites_deletes_and_lists(paths):
    create_secrets(paths, "cardio-2026")
    path = secrets_dir(paths, "cardio-2026") / SECRETS_FILE
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    items = destroy_secrets(paths, "cardio-2026")
    assert [(i.kind, i.sha256) for i in items] == [("secret", digest), ("directory", None)]
    assert not secrets_dir(paths, "cardio-2026").exists()
    with pytest.raises(NotFound):
        load_secrets(paths, "cardio-2026")
    assert destroy_secrets(paths, "cardio-2026") == []
