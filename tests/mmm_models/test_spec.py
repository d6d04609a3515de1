"""A bad spec is rejected with a message that names the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmm_models.spec import ModelSpec, SpecError

BASE = {"name": "m", "date_column": "date", "target": {"column": "y"}, "channels": [{"name": "tv"}]}


def with_channel(**channel: object) -> dict:
    return {**BASE, "channels": [{"name": "tv", **channel}]}


def test_example_spec_loads(example_spec: ModelSpec) -> None:
    assert example_spec.channel_names == ["x1", "x2"]
    assert example_spec.channels[0].adstock.l_max == 8
    assert [c.name for c in example_spec.controls] == ["event_1", "event_2", "t"]


def test_defaults_are_geometric_logistic_share() -> None:
    spec = ModelSpec.from_dict(BASE)
    channel = spec.channels[0]
    assert (channel.adstock.type, channel.saturation.type, channel.effect.kind) == (
        "geometric",
        "logistic",
        "contribution_share",
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (with_channel(adstock={"type": "wavy"}), "channels.0.adstock"),
        (with_channel(saturation={"type": "sigmoid"}), "channels.0.saturation"),
        (with_channel(adstock={"type": "geometric", "l_max": -2}), "channels.0.adstock.geometric.l_max"),
        (
            with_channel(adstock={"type": "geometric", "priors": {"alpha": {"dist": "Beta", "alpha": 1, "mu": 2}}}),
            "Beta has no parameter ['mu']",
        ),
        (
            with_channel(saturation={"type": "hill", "priors": {"half": {"dist": "Gamma", "alpha": -1, "beta": 1}}}),
            "Gamma parameter 'alpha' must be > 0",
        ),
        (
            with_channel(saturation={"type": "logistic", "priors": {"lam": {"dist": "Cauchyish", "x": 1}}}),
            "unknown distribution 'Cauchyish'",
        ),
        (
            with_channel(adstock={"type": "geometric", "priors": {"beta": {"dist": "Beta", "alpha": 1, "beta": 1}}}),
            "geometric adstock has no parameter ['beta']",
        ),
        ({**BASE, "channels": [{"name": "tv"}, {"name": "tv"}]}, "repeated: ['tv']"),
        ({**BASE, "channels": []}, "channels"),
        ({**BASE, "trend": {"type": "piecewise"}}, "changepoints >= 1"),
        ({**BASE, "target": {"column": "y", "link": "log"}}, "use effect kind 'coefficient'"),
        ({**BASE, "colour": "blue"}, "colour"),
    ],
    ids=[
        "unknown-adstock",
        "unknown-saturation",
        "negative-l_max",
        "prior-wrong-param",
        "prior-negative-param",
        "prior-unknown-family",
        "transform-unknown-param",
        "duplicate-channel",
        "no-channels",
        "piecewise-without-changepoints",
        "log-link-share",
        "unknown-field",
    ],
)
def test_bad_spec_names_the_problem(spec: dict, message: str) -> None:
    with pytest.raises(SpecError) as error:
        ModelSpec.from_dict(spec)
    assert message in str(error.value)


def test_bad_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed")
    with pytest.raises(SpecError, match=r"broken\.yaml"):
        ModelSpec.from_yaml(path)


def test_yaml_round_trip() -> None:
    spec = ModelSpec.from_dict(
        with_channel(
            adstock={"type": "delayed", "l_max": 6},
            effect={"kind": "roas", "prior": {"dist": "LogNormal", "mu": 1, "sigma": 0.5}},
        )
    )
    import yaml

    assert ModelSpec.from_dict(yaml.safe_load(spec.to_yaml())) == spec


def test_structure_key_ignores_nothing_that_shapes_the_graph() -> None:
    a = ModelSpec.from_dict(BASE)
    b = ModelSpec.from_dict(with_channel(adstock={"type": "geometric", "l_max": 4}))
    assert a.structure_key() == ModelSpec.from_dict(BASE).structure_key()
    assert a.structure_key() != b.structure_key()
