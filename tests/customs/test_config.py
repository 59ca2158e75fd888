"""The attribute configuration: the seed, and broken files refused with file:line: key."""

from __future__ import annotations

import shutil

import pytest

from gateway._customs import CustomsConfig, load_customs
from gateway._errors import ConfigError
from tests.customs.support import SEED


def test_the_seed_names_twelve_typed_attributes_and_the_collagen_rule():
    config = load_customs(SEED)
    assert len(config.attributes) == 12
    assert {a.type for a in config.attributes.values()} == {"text", "enum", "bool", "number", "country"}
    assert config.attributes["contains_animal_extract"].type == "bool"
    assert config.attributes["raw_material_origin"].type == "country"
    collagen = next(r for r in config.rules if r.name == "collagen-animal-extract")
    assert (collagen.attribute, collagen.source, collagen.overrides) == ("contains_animal_extract", "supplier", True)
    assert collagen.applies("X", "", "胶原蛋白饮") and collagen.applies("X", "", "Marine COLLAGEN")
    assert not collagen.applies("X", "", "保温杯")


def test_no_directory_means_nothing_is_required(tmp_path):
    config = load_customs(tmp_path / "absent")
    assert config == CustomsConfig() and not config.enabled


def _broken(tmp_path, file: str, old: str, new: str) -> ConfigError:
    target = shutil.copytree(SEED, tmp_path / "customs")
    path = target / file
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_customs(target)
    return caught.value


def _line_of(path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in line)


@pytest.mark.parametrize(("old", "new", "key", "says"), [
    ('type = "bool"', 'type = "boolean"', "attributes.contains_animal_extract.type", "must be one of"),
    ('label_en = "brand"', 'lable_en = "brand"', "attributes.brand.lable_en", "unknown key"),
    ('values = ["none", "built_in", "packed_with", "standalone"]', 'values = []',
     "attributes.battery_type.values", "enum needs"),
    ("min = 0.1", "min = 200000", "attributes.net_weight_g.min", "above max"),
    ('applies_to = { categories = ["cosmetics"] }', 'applies_to = { categories = ["cosmetics"], destinations = ["XX"] }',
     "attributes.cosmetic_ingredients.applies_to.destinations[0]", "ISO 3166-1"),
    ('pattern = "[0-9]{6}([0-9]{2}){0,2}"', 'pattern = "[0-9"', "attributes.hs_code.pattern", "regular expression"),
])
def test_a_broken_attributes_file_is_refused_with_file_line_and_key(tmp_path, old, new, key, says):
    error = _broken(tmp_path, "attributes.toml", old, new)
    path = tmp_path / "customs" / "attributes.toml"
    assert error.path == str(path)
    assert error.key == key
    assert error.line == _line_of(path, new)
    assert says in error.message
    assert str(error).startswith(f"{path}:{error.line}: {key}: ")


@pytest.mark.parametrize(("old", "new", "key", "says"), [
    ('from = "supplier"\nfield = "contains_animal_extract"', 'from = "vendor"\nfield = "contains_animal_extract"',
     "rule[0].from", "'product' or 'supplier'"),
    ('attribute = "manufacturer"', 'attribute = "maker"', "rule[1].attribute", "unknown attribute"),
    ("\noverrides = true", '\noverrides = "yes"', "rule[0].overrides", "true or false"),
])
def test_a_broken_fill_rule_is_refused_with_file_line_and_key(tmp_path, old, new, key, says):
    error = _broken(tmp_path, "fill_rules.toml", old, new)
    path = tmp_path / "customs" / "fill_rules.toml"
    assert error.key == key and says in error.message
    assert error.line == _line_of(path, new.strip().split("\n")[0])


def test_a_directory_without_attributes_toml_is_refused(tmp_path):
    (tmp_path / "customs").mkdir()
    with pytest.raises(ConfigError, match="attributes.toml"):
        load_customs(tmp_path / "customs")
