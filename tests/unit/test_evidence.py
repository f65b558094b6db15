"""The TRS evidence library: content, units, sign normalisation, design-prior rules (shrinkage, indirectness),
validation messages, and the arms resolved from it (raw and used effects, unrecorded adverse events)."""

from __future__ import annotations

import importlib.resources
import math
import warnings
from pathlib import Path
from typing import get_args

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import make_scenario
from trialsim.evidence import (
    BACKGROUNDS,
    CERTAINTIES,
    CERTAINTY_FACTOR,
    INDIRECTNESS_SD_FACTOR,
    MAX_PLAUSIBLE_SMD,
    MECHANISM_FAMILIES,
    POINTS_SD_CHANGE,
    SMALL_STUDY_DISCOUNT,
    STATUSES,
    WEAK_CERTAINTIES,
    EvidenceLibrary,
    EvidenceWarning,
    Intervention,
    NormalPrior,
    design_prior,
    indirectness_steps,
    is_implausible,
    load_library,
    prior_sd,
    shrink_implausible,
)
from trialsim.exceptions import ScenarioError, StatisticalWarning
from trialsim.spec.scenario import Population
from trialsim.world.arms import DESCRIPTION_WIDTH, ResolvedArm, describe_arm, resolve_arms

Z = 1.96
SMD_MEASURES = {"hedges_g", "cohens_d", "smd"}


@pytest.fixture(scope="module")
def library() -> EvidenceLibrary:
    return load_library()


def prior_quietly(entry: Intervention, **kwargs: str) -> NormalPrior:
    """design_prior that fails the test if any warning is issued."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return design_prior(entry, **kwargs)


def prior_ignoring_warnings(entry: Intervention, **kwargs: str) -> NormalPrior:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EvidenceWarning)
        return design_prior(entry, **kwargs)


def all_effects(library: EvidenceLibrary):
    """(entry, control, effect) for every recorded effect of the library."""
    for entry in library:
        for control, context in entry.contexts.items():
            for effect in context.effects.values():
                yield entry, control, effect


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
        "glycine_site_agonist", "glycine_clozapine_augmentation", "cbt_psychosis", "antidepressant_augmentation",
        "placebo", "sham", "treatment_as_usual",
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
            for default in context.design_default.values():
                assert default.source.strip(), entry.name
        for event in entry.adverse_events.values():
            assert event.source.strip() and event.status in STATUSES, entry.name


def test_every_active_entry_records_the_population_of_its_evidence(library: EvidenceLibrary) -> None:
    for entry in library:
        assert (entry.background is None) == entry.is_control, entry.name
        assert entry.is_control or entry.background in BACKGROUNDS, entry.name
    # the populations named by the review: Carr 2025 studied TRS not on clozapine, ARISE/EMERGENT not TRS
    assert library.get("antidepressant_augmentation").background == "trs_not_on_clozapine"
    assert library.get("glycine_site_agonist").background == "trs_not_on_clozapine"
    assert library.get("xanomeline_trospium").background == "not_trs"
    assert library.get("glycine_clozapine_augmentation").background == "clozapine"


def test_library_does_not_point_at_files_outside_the_repository(library: EvidenceLibrary) -> None:
    text = Path(library.path).read_text(encoding="utf-8")
    for fragment in ("shared/", "trs_parameters", "trs_evidence", "seed_tables", "seed document"):
        assert fragment not in text, fragment


# ----------------------------------------------------------------------------------------------- units


def test_every_smd_is_plausible_and_every_points_value_is_labelled(library: EvidenceLibrary) -> None:
    """Plausible range: |SMD| <= 1.5 (1.7 x clozapine's 0.88 vs placebo, the largest antipsychotic effect in Leucht
    et al. 2013). A printed SMD measure must lie in it; a mean difference must be labelled points and converted
    with the documented SD of change of its outcome; every converted SMD and design default lies in it too."""
    assert MAX_PLAUSIBLE_SMD == 1.5
    for entry, control, effect in all_effects(library):
        where = (entry.name, control, effect.outcome)
        if effect.measure in SMD_MEASURES:
            assert effect.unit == "SMD" and effect.sd_change is None, where
            assert abs(effect.as_printed) <= MAX_PLAUSIBLE_SMD, where
        else:
            assert effect.measure == "mean_difference" and effect.unit == "points", where
            assert effect.sd_change == POINTS_SD_CHANGE[effect.outcome], where
            assert effect.smd == pytest.approx(effect.value / POINTS_SD_CHANGE[effect.outcome]), where
        assert abs(effect.smd) <= MAX_PLAUSIBLE_SMD, where
    for entry in library:
        for context in entry.contexts.values():
            assert all(abs(d.mean) <= MAX_PLAUSIBLE_SMD for d in context.design_default.values()), entry.name


def test_points_sd_of_change_is_the_documented_one() -> None:
    # total: EMERGENT 9.9/0.65 = 15.2 and FOCUS 12.5 -> 15; subscales: EMERGENT 3.2/0.67 and 1.7/0.40
    assert POINTS_SD_CHANGE == {"panss_total": 15.0, "panss_positive": 4.8, "panss_negative": 4.3}
    for points, d, sd in ((3.2, 0.67, 4.8), (1.7, 0.40, 4.3), (9.9, 0.65, 15.2)):
        assert points / d == pytest.approx(sd, abs=0.05)


@pytest.mark.parametrize(
    ("name", "printed", "interval", "smd"),
    [
        # Mishra et al. 2024, Table 5: MD (95% CrI) in PANSS points, reduction-negative
        ("mirtazapine_augmentation", -5.2, (-7.7, -2.7), 5.2 / 15),
        ("memantine_augmentation", -2.1, (-4.0, -0.19), 2.1 / 15),
        ("glycine_clozapine_augmentation", -0.07, (-1.89, 1.78), 0.07 / 15),
        # FOCUS 9-month difference and Lin 2018's difference of mean changes
        ("cbt_psychosis", -2.40, (-4.79, -0.02), 2.40 / 15),
        ("sodium_benzoate_augmentation", 3.3, None, 3.3 / 15),
    ],
)
def test_points_entries_are_converted_with_the_documented_sd(
    library: EvidenceLibrary, name: str, printed: float, interval: tuple[float, float] | None, smd: float
) -> None:
    effect = library.get(name).effect("panss_total")
    assert (effect.measure, effect.as_printed, effect.ci95_as_printed) == ("mean_difference", printed, interval)
    assert effect.smd == pytest.approx(smd)
    if interval is not None:
        assert effect.ci95 == pytest.approx(tuple(sorted(-v / 15 for v in interval)))
        assert effect.standard_error == pytest.approx((interval[1] - interval[0]) / (2 * Z) / 15)
    adjustments = prior_quietly(library.get(name)).adjustments
    assert adjustments[0] == f"from points ({-printed if printed < 0 else printed:+.2f} / SD 15)"


def test_a_subscale_mean_difference_uses_the_subscale_sd(tmp_path: Path) -> None:
    effects = {"panss_positive": {"measure": "mean_difference", "as_printed": -6.09, "ci95_as_printed": [-10.95, -1.22],
                                  "source_sign_convention": "reduction_negative", "status": "verified"}}  # fmt: skip
    effect = load_library(_write(tmp_path, {"test_drug": _entry(effects=effects)})).get("test_drug").effects
    assert effect["panss_positive"].smd == pytest.approx(6.09 / 4.8)


def test_points_labelled_as_an_smd_are_rejected(tmp_path: Path) -> None:
    effects = {"panss_total": {"measure": "hedges_g", "as_printed": 5.265, "source_sign_convention": "benefit_positive",
                               "status": "verified"}}  # fmt: skip
    with pytest.raises(ScenarioError, match=r"panss_total: hedges_g 5\.265 exceeds .*give measure: mean_difference"):
        load_library(_write(tmp_path, {"test_drug": _entry(effects=effects)}))


def test_every_active_entry_yields_a_total_symptom_design_prior(library: EvidenceLibrary) -> None:
    for entry in library:
        for control in entry.contexts:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", EvidenceWarning)
                prior = design_prior(entry, control=control)
            assert math.isfinite(prior.mean_smd) and prior.sd_smd >= 0 and prior.basis, (entry.name, control)
            assert (prior.sd_smd == 0) == entry.is_control, entry.name


def test_adverse_events_as_in_their_sources(library: EvidenceLibrary) -> None:
    events = library.get("xanomeline_trospium").adverse_events
    assert (events["nausea"].active, events["nausea"].control) == (0.185, 0.038)
    assert (events["constipation"].active, events["constipation"].control) == (0.171, 0.061)
    assert (events["vomiting"].active, events["vomiting"].control) == (0.135, 0.017)
    headache = library.get("rtms").adverse_events["headache"]
    assert (headache.active, headache.control, headache.status) == (0.15, 0.07, "assumption")
    assert library.get("ect_augmentation").adverse_events["confusion_session_postponed"].active == 2 / 20
    clozapine = library.get("clozapine").adverse_events  # Myles et al. 2018
    assert (clozapine["neutropenia"].active, clozapine["severe_neutropenia"].active) == (0.038, 0.009)
    assert library.get("ect_augmentation").adverse_events["memory_impairment"].active == 0.242  # Wang et al. 2018


# ----------------------------------------------------------------------------------------------- signs


@pytest.mark.parametrize(
    ("name", "outcome", "control", "printed", "expected"),
    [
        # Grover et al. 2022 (benefit-positive as printed)
        ("ect_augmentation", "panss_total", "treatment_as_usual", 0.743, 0.743),
        ("aripiprazole_augmentation", "panss_total", None, 0.57, 0.57),
        ("risperidone_augmentation", "panss_total", None, -0.27, -0.27),
        # Mishra et al. 2024 (reduction-negative, PANSS points) and Carr et al. 2025 (reduction-negative)
        ("mirtazapine_augmentation", "panss_total", None, -5.2, 5.2 / 15),
        ("glycine_site_agonist", "panss_negative", None, -1.18, 1.18),
        ("rtms", "panss_positive", None, -0.42, 0.42),
        ("tdcs", "panss_positive", None, -0.42, 0.42),
        ("antidepressant_augmentation", "panss_negative", None, -0.74, 0.74),
        # Kaul et al. 2024: d = 0.65 printed as a magnitude for a -9.9-point difference favouring X/T
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


def test_xanomeline_design_default_is_arise_in_smd(library: EvidenceLibrary) -> None:
    # ARISE: -2.0 PANSS points (95% CI -4.5 to 0.5), reduction-negative, divided by the SD of change 15
    default = library.get("xanomeline_trospium").design_default["panss_total"]
    assert default.mean == pytest.approx(2.0 / 15, abs=5e-4)
    assert default.ci95 == pytest.approx((-0.5 / 15, 4.5 / 15), abs=5e-4)


# ----------------------------------------------------------------------------------------------- priors


def test_glycine_total_warns_and_uses_its_interval_when_shrinking(library: EvidenceLibrary) -> None:
    # very-low certainty g = 1.17 [0.59, 1.75]: SE 0.296 < 1.17/1.96 = 0.597, so s = 0.597;
    # mean = g tau^2/(tau^2 + s^2), tau = 0.5; the skeptical posterior replaces the small-study discount
    s2 = (1.17 / Z) ** 2
    with pytest.warns(EvidenceWarning, match="glycine_site_agonist.*implausible"):
        prior = design_prior(library.get("glycine_site_agonist"), outcome="panss_total")
    assert prior.mean_smd == pytest.approx(1.17 * 0.25 / (0.25 + s2))
    assert prior.mean_smd == pytest.approx(0.4824, abs=1e-4)
    assert prior.sd_smd == pytest.approx(math.sqrt(0.25 * s2 / (0.25 + s2)))
    assert prior.raw_smd == pytest.approx(1.17)
    assert prior.adjustments == ("shrunk: implausible (very low certainty; skeptical N(0, 0.5²) posterior)",)
    assert issubclass(EvidenceWarning, StatisticalWarning)


def test_small_study_discount_is_the_leucht_correction() -> None:
    # Leucht et al. 2017: antipsychotics vs placebo SMD 0.47, 0.38 after small-trial effects and publication bias
    assert SMALL_STUDY_DISCOUNT == pytest.approx(0.38 / 0.47)
    assert WEAK_CERTAINTIES == {"low", "very_low", "not_graded"}


@pytest.mark.parametrize(
    ("name", "raw", "certainty"),
    [("antidepressant_augmentation", 0.69, "low"), ("topiramate_augmentation", 0.392, "low"),
     ("lamotrigine_augmentation", 0.145, "low"), ("risperidone_augmentation", -0.27, "low"),
     ("mirtazapine_augmentation", 5.2 / 15, "low"), ("clozapine", 0.34, "not_graded")],
)  # fmt: skip
def test_weak_estimates_are_discounted(library: EvidenceLibrary, name: str, raw: float, certainty: str) -> None:
    prior = prior_quietly(library.get(name))
    assert (prior.raw_smd, prior.certainty) == (pytest.approx(raw), certainty)
    assert prior.mean_smd == pytest.approx(raw * 0.38 / 0.47)
    assert f"shrunk ×0.81 ({certainty.replace('_', ' ')}" in prior.adjustments[-1]


def test_every_weak_certainty_entry_is_shrunk(library: EvidenceLibrary) -> None:
    """Every low, very-low or ungraded estimate drives its design prior at most at 0.38/0.47 of its size: by the
    discount itself, by the skeptical posterior (implausible estimates) or by a design default that replaces it."""
    checked = 0
    for entry in library:
        for control, context in entry.contexts.items():
            effect = context.effects.get("panss_total")
            if entry.is_control or effect is None:
                continue
            prior = prior_ignoring_warnings(entry, control=control)
            if prior.certainty not in WEAK_CERTAINTIES:
                continue
            assert abs(prior.mean_smd) <= SMALL_STUDY_DISCOUNT * abs(effect.smd) + 1e-12, (entry.name, control)
            assert any(a.startswith(("shrunk", "design default")) for a in prior.adjustments), entry.name
            checked += 1
    assert checked >= 14


@pytest.mark.parametrize(("certainty", "factor"), [("high", 1.0), ("moderate", 1.25)])
def test_high_and_moderate_certainty_are_not_shrunk(tmp_path: Path, certainty: str, factor: float) -> None:
    effects = {"panss_total": {"measure": "hedges_g", "as_printed": 0.45, "ci95_as_printed": [0.25, 0.65],
                               "source_sign_convention": "benefit_positive", "status": "verified"}}  # fmt: skip
    entry = load_library(_write(tmp_path, {"test_drug": _entry(certainty=certainty, effects=effects)})).get("test_drug")
    prior = prior_quietly(entry)
    assert (prior.mean_smd, prior.raw_smd, prior.adjustments) == (0.45, 0.45, ())
    assert prior.sd_smd == pytest.approx(factor * 0.40 / (2 * Z))


def test_plausible_evidence_does_not_warn(library: EvidenceLibrary) -> None:
    prior = prior_quietly(library.get("glycine_site_agonist"), outcome="panss_positive")  # g 0.56, low certainty
    assert prior.mean_smd == pytest.approx(0.56 * SMALL_STUDY_DISCOUNT)


# ----------------------------------------------------------------------------------------------- indirectness


@pytest.mark.parametrize(
    ("evidence", "trial", "steps"),
    [("clozapine", "clozapine", 0), ("clozapine", "trs_not_on_clozapine", 1), ("trs_not_on_clozapine", "clozapine", 1),
     ("not_trs", "trs_not_on_clozapine", 1), ("not_trs", "clozapine", 2), ("clozapine", "not_trs", 2)],
)  # fmt: skip
def test_indirectness_steps(evidence: str, trial: str, steps: int) -> None:
    assert indirectness_steps(evidence, trial) == steps


@pytest.mark.parametrize(
    ("name", "background", "factor"),
    [("antidepressant_augmentation", "clozapine", 1.5), ("xanomeline_trospium", "clozapine", 2.25),
     ("xanomeline_trospium", "trs_not_on_clozapine", 1.5), ("glycine_clozapine_augmentation", "not_trs", 2.25)],
)  # fmt: skip
def test_mismatched_background_widens_the_prior_and_warns(
    library: EvidenceLibrary, name: str, background: str, factor: float
) -> None:
    """Rule: sd x 1.5 per step of indirectness (ASSUMPTION); the mean is unchanged; one EvidenceWarning."""
    entry = library.get(name)
    direct = prior_quietly(entry, background=entry.background)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        indirect = design_prior(entry, background=background)
    assert [w.category for w in caught] == [EvidenceWarning]
    assert "indirectness" in str(caught[0].message) and name in str(caught[0].message)
    assert INDIRECTNESS_SD_FACTOR == 1.5
    assert indirect.mean_smd == direct.mean_smd
    assert indirect.sd_smd == pytest.approx(factor * direct.sd_smd)
    assert indirect.adjustments[-1].startswith("indirect: ") and indirect.adjustments[:-1] == direct.adjustments


def test_matching_or_unknown_background_leaves_the_prior_alone(library: EvidenceLibrary) -> None:
    entry = library.get("antidepressant_augmentation")
    assert prior_quietly(entry, background="trs_not_on_clozapine") == prior_quietly(entry)


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
    xt = prior_quietly(library.get("xanomeline_trospium"))  # design default 0.133 [-0.033, 0.30], not graded: x2.0
    assert (xt.mean_smd, xt.sd_smd) == (0.133, pytest.approx(0.333 / (2 * Z) * 2.0))
    assert xt.adjustments == ("design default (derived)",)


def test_width_rule_from_effect_interval_and_without_interval(library: EvidenceLibrary) -> None:
    antidepressant = prior_quietly(library.get("antidepressant_augmentation"))  # g 0.69 [0.38, 1.00], low
    assert antidepressant.mean_smd == pytest.approx(0.69 * SMALL_STUDY_DISCOUNT)
    assert antidepressant.sd_smd == pytest.approx((1.00 - 0.38) / (2 * Z) * 1.5)
    lamotrigine = prior_quietly(library.get("lamotrigine_augmentation"))  # no interval, low
    assert (lamotrigine.mean_smd, lamotrigine.sd_smd) == (pytest.approx(0.145 * 0.38 / 0.47), pytest.approx(0.3))


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
    assert (tau.mean_smd, sham.mean_smd) == (pytest.approx(0.743 * SMALL_STUDY_DISCOUNT), 0.1)
    assert prior_quietly(ect).mean_smd == tau.mean_smd  # default context: the comparator
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
        "background": "clozapine",
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
        ({"background": None}, r"interventions\.test_drug: give background, the population of the evidence"),
        ({"background": "clozapine_resistant"}, r"interventions\.test_drug\.background = 'clozapine_resistant'"),
        ({"effects": {"panss_total": {"outcome": "panss_positive", "as_printed": 0.3,
                                      "source_sign_convention": "benefit_positive", "status": "verified"}}},
         r"an effect's outcome must equal its key: panss_total \(outcome: panss_positive\)"),
    ],
)  # fmt: skip
def test_malformed_entries_are_reported(tmp_path: Path, changes: dict, pattern: str) -> None:
    with pytest.raises(ScenarioError, match=pattern):
        load_library(_write(tmp_path, {"test_drug": _entry(**changes)}))


def test_control_entry_must_not_carry_an_effect(tmp_path: Path) -> None:
    entry = _entry(mechanism_family="control", comparator="placebo")
    with pytest.raises(ScenarioError, match=r"interventions\.placebo: a control entry has effect 0 by definition"):
        load_library(_write(tmp_path, {"placebo": entry}))
    entry = {**_entry(mechanism_family="control", comparator="placebo"), "effects": {}}
    with pytest.raises(ScenarioError, match=r"interventions\.placebo: a control entry has no evidence population"):
        load_library(_write(tmp_path, {"placebo": entry}))


def test_unreadable_and_invalid_yaml_files(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read"):
        load_library(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("interventions: [unclosed", encoding="utf-8")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load_library(bad)


# ----------------------------------------------------------------------------------------------- resolved arms


def arms_of(*arms: dict, background: str = "clozapine", **overrides: object) -> list[ResolvedArm]:
    """resolve_arms on a small scenario with a placebo control and ``arms``; warnings are left to the caller."""
    scenario = make_scenario(
        arms=[{"name": "placebo", "control": True, "intervention": "placebo"}, *arms],
        population={"background": background},
        **overrides,
    )
    return resolve_arms(scenario)


def test_population_background_default_and_values_match_the_library() -> None:
    field = Population.model_fields["background"]
    assert field.default == "clozapine"
    assert get_args(field.annotation) == BACKGROUNDS
    with pytest.raises(ScenarioError, match=r"population\.background"):
        make_scenario(population={"background": "ultra_trs"})


def test_resolved_arm_records_raw_used_and_adjustments_and_warns_once() -> None:
    """Antidepressant augmentation (Carr 2025, TRS not on clozapine, low certainty) in a clozapine trial:
    used = 0.69 x 0.38/0.47, prior sd = 1.5 (low) x SE x 1.5 (one step of indirectness), in points x 15."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        arm = arms_of({"name": "ad", "intervention": "antidepressant_augmentation"})[1]
    assert [w.category for w in caught] == [EvidenceWarning]
    assert "antidepressant_augmentation" in str(caught[0].message)
    assert (arm.intervention, arm.versus, arm.evidence_certainty) == ("antidepressant_augmentation", "placebo", "low")
    assert arm.effect_raw_smd == pytest.approx(0.69)
    assert arm.effect_used_smd == pytest.approx(0.69 * 0.38 / 0.47)
    assert arm.effect_total == pytest.approx(15 * 0.69 * 0.38 / 0.47)
    assert arm.prior_mean == pytest.approx(arm.effect_total)
    assert arm.prior_sd == pytest.approx(15 * 1.5 * 1.5 * (1.00 - 0.38) / (2 * Z))
    assert arm.evidence_adjustments == [
        "shrunk ×0.81 (low certainty; small-study discount)",
        "indirect: TRS off clozapine (evidence; trial on clozapine; sd ×1.5)",
    ]


AD_POPULATION = "trs_not_on_clozapine"  # Carr 2025


def test_resolved_arm_with_matching_background_is_quiet_and_direct() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        arm = arms_of({"name": "a", "intervention": "antidepressant_augmentation"}, background=AD_POPULATION)[1]
    assert arm.prior_sd == pytest.approx(15 * 1.5 * (1.00 - 0.38) / (2 * Z))
    assert not any(a.startswith("indirect") for a in arm.evidence_adjustments)


def test_scenario_values_are_reported_as_adjustments() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        arm = arms_of(
            {"name": "ari", "intervention": "aripiprazole_augmentation", "effect": {"smd": 0.0},
             "design_prior": {"mean_smd": 0.1, "sd_smd": 0.2}},
        )[1]  # fmt: skip
    assert (arm.effect_raw_smd, arm.effect_used_smd, arm.evidence_certainty) == (0.57, 0.0, "low")
    assert arm.evidence_adjustments == ["effect from the scenario", "design prior from the scenario"]
    assert (arm.prior_mean, arm.prior_sd) == (pytest.approx(1.5), pytest.approx(3.0))


def test_describe_arm_shows_used_raw_and_reasons_in_one_short_line() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EvidenceWarning)
        arms = arms_of(
            {"name": "ari", "intervention": "aripiprazole_augmentation"},
            {"name": "antidepressant", "intervention": "antidepressant_augmentation"},
            {"name": "mirtazapine", "intervention": "mirtazapine_augmentation"},
            {"name": "a_very_long_arm_name_for_xanomeline_tros", "intervention": "xanomeline_trospium"},
            {"name": "plain", "effect": {"points": 3.0}},
        )
    lines = [describe_arm(arm) for arm in arms]
    assert lines[0] == "placebo: control (placebo)"
    assert lines[1] == "ari: 0.20 SMD vs placebo (raw 0.57, low certainty; design default)"
    assert lines[2] == "antidepressant: 0.56 SMD vs placebo (raw 0.69, low; shrunk ×0.81; indirect: TRS off clozapine)"
    assert lines[3] == "mirtazapine: 0.28 SMD vs placebo (raw 0.35, low certainty; from points; shrunk ×0.81)"
    assert lines[4].startswith("a_very_long_arm_name_for_xanomeline_tros: 0.13 SMD vs placebo (raw 0.65")
    assert lines[4].endswith("…")
    assert lines[5] == "plain: 0.20 SMD (set by the scenario)"
    assert all(len(line) <= DESCRIPTION_WIDTH == 100 for line in lines)


def test_unrecorded_adverse_events_are_absent_not_zero() -> None:
    """Aripiprazole's entry records no adverse events: none appear for its arm (not 0.0), while X/T's recorded
    nausea does; the control arm gets only control-column rates that some active entry records."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EvidenceWarning)
        placebo, ari, xt, ect = arms_of(
            {"name": "ari", "intervention": "aripiprazole_augmentation"},
            {"name": "xt", "intervention": "xanomeline_trospium"},
            {"name": "ect", "intervention": "ect_augmentation"},
        )
    assert ari.adverse_events == {} and ari.adverse_events_recorded == frozenset()
    assert (ari.ae_discontinuation, ari.ae_discontinuation_recorded) == (0.0, False)
    assert xt.adverse_events["nausea"] == 0.185 and "nausea" in xt.adverse_events_recorded
    assert (xt.ae_discontinuation, xt.ae_discontinuation_recorded) == (0.45, True)  # on clozapine: Vadiei 2025
    assert ect.adverse_events_recorded == {"confusion_session_postponed", "memory_impairment"}
    assert "nausea" in placebo.adverse_events_recorded  # EMERGENT placebo rate
    assert placebo.adverse_events["memory_impairment"] == 0.0  # Wang 2018: 0% without ECT, recorded
    assert "confusion_session_postponed" not in placebo.adverse_events_recorded  # no control rate recorded
    assert (placebo.ae_discontinuation, placebo.ae_discontinuation_recorded) == (0.02, True)
    assert all(set(arm.adverse_events) == arm.adverse_events_recorded for arm in (placebo, ari, xt, ect))


def test_summary_arms_record_raw_used_adjustments_and_recorded_events(vague_plan) -> None:
    from trialsim.runner import simulate

    scenario = make_scenario(
        arms=[
            {"name": "placebo", "control": True, "intervention": "placebo"},
            {"name": "ari", "intervention": "aripiprazole_augmentation"},
            {"name": "xt", "intervention": "xanomeline_trospium", "effect": {"smd": 0.3}},
        ],
        population={"background": "not_trs"},
        sample_size=30,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EvidenceWarning)
        arms = {a["name"]: a for a in simulate(scenario, vague_plan, 3, seed=1, workers=1).summary["arms"]}
    assert arms["ari"]["effect_raw_smd"] == 0.57 and arms["ari"]["effect_used_smd"] == pytest.approx(0.2)
    assert arms["ari"]["evidence_certainty"] == "low"
    assert arms["ari"]["evidence_adjustments"] == [
        "design default (assumption)",
        "indirect: on clozapine (evidence; trial not TRS; sd ×2.25)",
    ]
    assert (arms["ari"]["adverse_events_recorded"], arms["ari"]["ae_discontinuation"]) == ([], None)
    assert arms["xt"]["effect_used_smd"] == pytest.approx(0.3)
    assert arms["xt"]["evidence_adjustments"] == ["design default (derived)", "effect from the scenario"]
    assert "nausea" in arms["xt"]["adverse_events_recorded"] and arms["xt"]["ae_discontinuation"] == 0.02
    assert arms["placebo"]["effect_raw_smd"] is None and arms["placebo"]["evidence_adjustments"] == []
