"""The TRS evidence library: content, sign normalisation, design-prior rules and validation messages."""

from __future__ import annotations

import importlib.resources
import math
import warnings
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from trialsim.evidence import (
    CERTAINTIES,
    CERTAINTY_FACTOR,
    MECHANISM_FAMILIES,
    STATUSES,
    EvidenceLibrary,
    EvidenceWarning,
    Intervention,
    NormalPrior,
    design_prior,
    is_implausible,
    load_library,
    prior_sd,
    shrink_implausible,
)
from trialsim.exceptions import ScenarioError, StatisticalWarning

Z = 1.96


@pytest.fixture(scope="module")
def library() -> EvidenceLibrary:
    return load_library()


def prior_quietly(entry: Intervention, **kwargs: str) -> NormalPrior:
    """design_prior that fails the test if any warning is issued."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return design_prior(entry, **kwargs)


# ----------------------------------------------------------------------------------------------- content


def test_library_ships_inside_the_package(library: EvidenceLibrary) -> None:
    bundled = importlib.resources.files("trialsim.evidence").joinpath("interventions.yaml")
    assert bundled.is_file()
    assert Path(library.path).name == "interventions.yaml"


def test_required_entries_are_present(library: EvidenceLibrary) -> None:
    required = {
        "xanomeline_trospium", "aripiprazole_augmentation", "risperidone_augmentation", "mirtazapine_augmentation",
        "memantine_augmentation", "topiramate_augmentation", "lamotrigine_augmentation",
        "sodium_benzoate_augmentation", "ect_augmentation", "rtms", "tdcs", "high_dose_olanzapine",
        "glycine_site_agonist", "cbt_psychosis", "antidepressant_augmentation", "placebo", "sham",
        "treatment_as_usual",
    }  # fmt: skip
    assert required <= set(library.names)


def test_every_entry_has_citation_certainty_and_status(library: EvidenceLibrary) -> None:
    for entry in library:
        assert entry.source.strip(), entry.name
        assert entry.population.strip(), entry.name
        assert entry.certainty in CERTAINTIES, entry.name
        assert entry.status in STATUSES, entry.name
        assert entry.mechanism_family in MECHANISM_FAMILIES, entry.name
        for context in entry.contexts.values():
            for effect in context.effects.values():
                assert effect.status in STATUSES and effect.conversion.strip(), entry.name
                assert effect.certainty is None or effect.certainty in CERTAINTIES, entry.name
            for default in context.design_default.values():
                assert default.status in STATUSES and default.basis.strip(), entry.name
        for event in entry.adverse_events.values():
            assert event.source.strip() and event.status in STATUSES, entry.name


def test_every_active_entry_yields_a_total_symptom_design_prior(library: EvidenceLibrary) -> None:
    for entry in library:
        for control in entry.contexts:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", EvidenceWarning)
                prior = design_prior(entry, control=control)
            assert math.isfinite(prior.mean_smd) and prior.sd_smd >= 0 and prior.basis, (entry.name, control)
            assert (prior.sd_smd == 0) == entry.is_control, entry.name


def test_adverse_events_as_in_trs_parameters(library: EvidenceLibrary) -> None:
    events = library.get("xanomeline_trospium").adverse_events
    assert (events["nausea"].active, events["nausea"].control) == (0.185, 0.038)
    assert (events["constipation"].active, events["constipation"].control) == (0.171, 0.061)
    assert (events["vomiting"].active, events["vomiting"].control) == (0.135, 0.017)
    headache = library.get("rtms").adverse_events["headache"]
    assert (headache.active, headache.control, headache.status) == (0.15, 0.07, "assumption")
    assert library.get("ect_augmentation").adverse_events["confusion_session_postponed"].active == 2 / 20
    assert library.get("clozapine").adverse_events["agranulocytosis"].active == 0.0047


# ----------------------------------------------------------------------------------------------- signs


@pytest.mark.parametrize(
    ("name", "outcome", "control", "printed", "expected"),
    [
        # seed Table 1 (benefit-positive as printed, despite its caption)
        ("ect_augmentation", "panss_total", "treatment_as_usual", 0.743, 0.743),
        ("aripiprazole_augmentation", "panss_total", None, 0.57, 0.57),
        ("risperidone_augmentation", "panss_total", None, -0.27, -0.27),
        ("mirtazapine_augmentation", "panss_total", None, 5.265, 5.265),
        # seed Table 2 (reduction-negative)
        ("glycine_site_agonist", "panss_negative", None, -1.18, 1.18),
        ("rtms", "panss_positive", None, -0.42, 0.42),
        ("tdcs", "panss_positive", None, -0.42, 0.42),
        ("antidepressant_augmentation", "panss_negative", None, -0.74, 0.74),
        # trs_parameters.yaml: d = 0.65 printed as a magnitude for a -9.9-point difference favouring X/T
        ("xanomeline_trospium", "panss_total", None, 0.65, 0.65),
    ],
)
def test_effects_are_normalised_to_positive_improvement(
    library: EvidenceLibrary, name: str, outcome: str, control: str | None, printed: float, expected: float
) -> None:
    effect = library.get(name).effect(outcome, control)
    assert effect.as_printed == printed
    assert effect.smd == pytest.approx(expected)
    assert effect.conversion


def test_reduction_negative_interval_is_negated_and_reordered(library: EvidenceLibrary) -> None:
    effect = library.get("glycine_site_agonist").effect("panss_negative")
    assert effect.source_sign_convention == "reduction_negative"
    assert effect.ci95_as_printed == (-1.49, -0.87)
    assert effect.ci95 == pytest.approx((0.87, 1.49))
    ect = library.get("ect_augmentation").effect("panss_total", "treatment_as_usual")
    assert ect.ci95 == pytest.approx((0.094, 1.392))


def test_xanomeline_conversion_records_the_point_difference(library: EvidenceLibrary) -> None:
    effect = library.get("xanomeline_trospium").effect("panss_total")
    assert effect.source_sign_convention == "benefit_positive"
    assert "-9.9" in effect.conversion


# ----------------------------------------------------------------------------------------------- priors


def test_mirtazapine_warns_and_is_shrunk(library: EvidenceLibrary) -> None:
    # rule: s = max(SE, |g|/1.96) = 5.265/1.96 (no SE printed); mean = g tau^2/(tau^2 + s^2), tau = 0.5
    s2 = (5.265 / Z) ** 2
    expected_mean = 5.265 * 0.25 / (0.25 + s2)  # = 0.17630
    expected_sd = math.sqrt(0.25 * s2 / (0.25 + s2))  # = 0.49156
    with pytest.warns(EvidenceWarning, match="mirtazapine_augmentation.*implausible"):
        prior = design_prior(library.get("mirtazapine_augmentation"))
    assert prior.mean_smd == pytest.approx(expected_mean)
    assert prior.mean_smd == pytest.approx(0.17630, abs=1e-5)  # well below the printed 5.265
    assert prior.sd_smd == pytest.approx(expected_sd)
    assert prior.sd_smd == pytest.approx(0.49156, abs=1e-5)
    assert issubclass(EvidenceWarning, StatisticalWarning)


def test_glycine_total_uses_its_interval_when_shrinking(library: EvidenceLibrary) -> None:
    # very-low certainty g = 1.17 [0.59, 1.75]: SE 0.296 < 1.17/1.96 = 0.597, so s = 0.597
    s2 = (1.17 / Z) ** 2
    with pytest.warns(EvidenceWarning):
        prior = design_prior(library.get("glycine_site_agonist"), outcome="panss_total")
    assert prior.mean_smd == pytest.approx(1.17 * 0.25 / (0.25 + s2))
    assert prior.mean_smd == pytest.approx(0.4824, abs=1e-4)


def test_plausible_evidence_does_not_warn(library: EvidenceLibrary) -> None:
    prior = prior_quietly(library.get("glycine_site_agonist"), outcome="panss_positive")
    assert prior.mean_smd == pytest.approx(0.56)


@pytest.mark.parametrize(
    ("smd", "certainty", "expected"),
    [(5.265, "low", True), (-1.2, "very_low", True), (1.01, "not_graded", True), (1.5, "moderate", False),
     (1.0, "low", False), (0.74, "very_low", False)],
)  # fmt: skip
def test_implausibility_rule(smd: float, certainty: str, expected: bool) -> None:
    assert is_implausible(smd, certainty) is expected


@given(smd=st.floats(min_value=1.0001, max_value=50), se=st.none() | st.floats(min_value=0.01, max_value=5))
def test_shrinkage_keeps_sign_and_bounds_the_design_value(smd: float, se: float | None) -> None:
    for signed in (smd, -smd):
        prior = shrink_implausible(signed, se)
        assert math.copysign(1, prior.mean_smd) == math.copysign(1, signed)
        assert abs(prior.mean_smd) < abs(signed)
        assert abs(prior.mean_smd) <= 0.98 * 0.5 + 1e-12
        assert 0 < prior.sd_smd <= 0.5


def test_width_rule_from_design_default_interval(library: EvidenceLibrary) -> None:
    # aripiprazole design default 0.20 [-0.05, 0.45], low certainty (factor 1.5)
    prior = prior_quietly(library.get("aripiprazole_augmentation"))
    assert prior.mean_smd == 0.20
    assert prior.sd_smd == pytest.approx((0.45 - -0.05) / (2 * Z) * 1.5)  # 0.19133
    xt = prior_quietly(library.get("xanomeline_trospium"))  # not graded: factor 2.0
    assert (xt.mean_smd, xt.sd_smd) == (0.15, pytest.approx(0.40 / (2 * Z) * 2.0))


def test_width_rule_from_effect_interval_and_without_interval(library: EvidenceLibrary) -> None:
    antidepressant = prior_quietly(library.get("antidepressant_augmentation"))  # g 0.69 [0.38, 1.00], low
    assert antidepressant.mean_smd == pytest.approx(0.69)
    assert antidepressant.sd_smd == pytest.approx((1.00 - 0.38) / (2 * Z) * 1.5)
    lamotrigine = prior_quietly(library.get("lamotrigine_augmentation"))  # no interval, low
    assert (lamotrigine.mean_smd, lamotrigine.sd_smd) == (pytest.approx(0.145), pytest.approx(0.2 * 1.5))


def test_certainty_factors_and_floor() -> None:
    assert CERTAINTY_FACTOR == {"high": 1.0, "moderate": 1.25, "low": 1.5, "very_low": 2.0, "not_graded": 2.0}
    assert prior_sd(0.1, "moderate") == pytest.approx(0.125)
    assert prior_sd(None, "very_low") == pytest.approx(0.4)
    assert prior_sd(0.01, "high") == 0.05


def test_ect_effect_depends_on_the_control(library: EvidenceLibrary) -> None:
    ect = library.get("ect_augmentation")
    assert set(ect.contexts) == {"sham", "treatment_as_usual"}
    tau = prior_quietly(ect, control="treatment_as_usual")
    sham = prior_quietly(ect, control="sham")
    assert (tau.mean_smd, sham.mean_smd) == (0.7, 0.1)
    assert prior_quietly(ect).mean_smd == 0.7  # default context: the comparator
    assert ect.effect(control="treatment_as_usual").smd == pytest.approx(0.743)
    assert ect.contexts["sham"].effects == {}


def test_unknown_control_context_is_a_clear_error(library: EvidenceLibrary) -> None:
    with pytest.raises(ScenarioError, match=r"'ect_augmentation'.*control = 'placebo'.*sham, treatment_as_usual"):
        design_prior(library.get("ect_augmentation"), control="placebo")


def test_unknown_outcome_is_a_clear_error(library: EvidenceLibrary) -> None:
    with pytest.raises(ScenarioError, match=r"outcome = 'panss_negative'.*available: panss_total"):
        design_prior(library.get("aripiprazole_augmentation"), outcome="panss_negative")


def test_control_arms_have_zero_effect(library: EvidenceLibrary) -> None:
    for name in ("placebo", "sham", "treatment_as_usual"):
        prior = prior_quietly(library.get(name))
        assert (prior.mean_smd, prior.sd_smd) == (0.0, 0.0)


def test_normal_prior_rejects_a_negative_sd() -> None:
    with pytest.raises(ValueError, match="sd >= 0"):
        NormalPrior(0.1, -0.2)


# ----------------------------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("name", "family"),
    [("xanomeline_trospium", "muscarinic_agonist"), ("rtms", "neuromodulation"), ("tdcs", "neuromodulation"),
     ("ect_augmentation", "neuromodulation"), ("aripiprazole_augmentation", "clozapine_augmentation"),
     ("placebo", "control"), ("sham", "control"), ("treatment_as_usual", "control"),
     ("high_dose_olanzapine", "high_dose_antipsychotic"), ("cbt_psychosis", "psychotherapy")],
)  # fmt: skip
def test_mechanism_families(library: EvidenceLibrary, name: str, family: str) -> None:
    assert library.get(name).mechanism_family == family
    assert library.get(name) in library.by_family(family)


def test_unknown_intervention_lists_suggestions(library: EvidenceLibrary) -> None:
    with pytest.raises(KeyError) as caught:
        library.get("xanomeline")
    assert isinstance(caught.value, ScenarioError)
    message = str(caught.value)
    assert "unknown intervention" in message and "did you mean 'xanomeline_trospium'" in message
    assert "aripiprazole_augmentation" in message  # the full list of names
    assert caught.value.suggestions == ["xanomeline_trospium"]


# ----------------------------------------------------------------------------------------------- validation


def _entry(**changes: object) -> dict:
    entry = {
        "label": "Test drug",
        "mechanism_family": "clozapine_augmentation",
        "certainty": "low",
        "status": "verified",
        "source": "Somebody 2024",
        "population": "TRS",
        "effects": {
            "panss_total": {"as_printed": 0.3, "source_sign_convention": "benefit_positive", "status": "verified"}
        },
    }
    entry.update(changes)
    return entry


def _write(tmp_path: Path, entries: dict) -> Path:
    path = tmp_path / "library.yaml"
    path.write_text(yaml.safe_dump({"schema_version": 1, "interventions": entries}), encoding="utf-8")
    return path


def test_minimal_file_loads(tmp_path: Path) -> None:
    library = load_library(_write(tmp_path, {"test_drug": _entry()}))
    assert library.names == ("test_drug",)
    assert library.get("test_drug").effect().conversion.startswith("printed benefit-positive")


def test_unknown_key_names_entry_and_field(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"library\.yaml: interventions\.test_drug\.dose_mg.*unknown key"):
        load_library(_write(tmp_path, {"test_drug": _entry(dose_mg=10)}))


def test_bad_status_names_entry_and_field(tmp_path: Path) -> None:
    effects = {"panss_total": {"as_printed": 0.3, "source_sign_convention": "benefit_positive", "status": "sure"}}
    with pytest.raises(ScenarioError) as caught:
        load_library(_write(tmp_path, {"test_drug": _entry(status="maybe", effects=effects)}))
    fields = {p.field: p for p in caught.value.problems}
    assert set(fields) == {"interventions.test_drug.status", "interventions.test_drug.effects.panss_total.status"}
    assert fields["interventions.test_drug.status"].value == "maybe"
    assert "'verified', 'derived' or 'assumption'" in str(caught.value)


@pytest.mark.parametrize(
    ("changes", "pattern"),
    [
        ({"certainty": "medium"}, r"interventions\.test_drug\.certainty = 'medium'"),
        ({"mechanism_family": "magic"}, r"interventions\.test_drug\.mechanism_family = 'magic'"),
        ({"source": " "}, r"interventions\.test_drug\.source"),
        ({"name": "other"}, r"name must equal its key: test_drug \(name: other\)"),
        ({"effects": {"panss_total": {"as_printed": 2.0, "ci95_as_printed": [0.1, 0.5],
                                      "source_sign_convention": "benefit_positive", "status": "verified"}}},
         r"interventions\.test_drug\.effects\.panss_total: as_printed 2\.0 lies outside"),
        ({"effects": {"panss_totl": {"as_printed": 0.3, "source_sign_convention": "benefit_positive",
                                     "status": "verified"}}},
         r"interventions\.test_drug\.effects\.panss_totl"),
        ({"effects": {}, "effects_by_control": {"sham": {}}},
         r"comparator 'placebo' must be one of the effects_by_control keys"),
    ],
)  # fmt: skip
def test_malformed_entries_are_reported(tmp_path: Path, changes: dict, pattern: str) -> None:
    with pytest.raises(ScenarioError, match=pattern):
        load_library(_write(tmp_path, {"test_drug": _entry(**changes)}))


def test_control_entry_must_not_carry_an_effect(tmp_path: Path) -> None:
    entry = _entry(mechanism_family="control", comparator="placebo")
    with pytest.raises(ScenarioError, match=r"interventions\.placebo: a control entry has effect 0 by definition"):
        load_library(_write(tmp_path, {"placebo": entry}))


def test_unreadable_and_invalid_yaml_files(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read"):
        load_library(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("interventions: [unclosed", encoding="utf-8")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load_library(bad)
