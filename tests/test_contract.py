"""The committed stubs are exactly what protoc makes from protos/ today."""
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))


def test_generated_stubs_match_protos(tmp_path):
    import gen_proto

    fresh = gen_proto.generate(tmp_path)
    committed = REPO / "avatar_service" / "api"
    assert fresh, "protoc generated nothing"
    for path in fresh:
        rel = path.relative_to(tmp_path)
        assert (committed / rel).read_text() == path.read_text(), f"{rel} is stale: run `make proto`"


def test_enums_start_unspecified():
    from avatar_service.api import pb

    for enum in pb.DESCRIPTOR.enum_types_by_name.values():
        assert enum.values[0].number == 0 and enum.values[0].name.endswith("_UNSPECIFIED"), enum.name
