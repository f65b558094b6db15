"""trialsim: simulate clinical trials in treatment-resistant schizophrenia before anyone enrols a patient."""

__version__ = "0.1.0"
