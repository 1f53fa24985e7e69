"""The iTunes-Amazon song matching benchmark (DeepMatcher / Ditto format), Structured and Dirty.

    data = read_pairs("itunes-amazon/Dirty/train.txt")     # records of both sides + labelled pairs
    records = song_records(data.attributes)                # RECORDS, type "song"
    feats = song_pair_features(data)                       # FEATURES, one row per distinct pair
    evaluate_itunes_amazon("itunes-amazon", "Dirty")       # train on train.txt, P/R/F1 on valid.txt

The data is not shipped: callers pass the folder holding ``Structured/`` and
``Dirty/``, each with ``train.txt`` and ``valid.txt``, as published with Ditto.
"""

from kg.adapters.itunes_amazon.ensemble import SeedEnsemble, train_ensemble
from kg.adapters.itunes_amazon.evaluate import (
    CONFIG,
    VARIANTS,
    Config,
    cross_validate,
    evaluate_itunes_amazon,
    fit,
    load_split,
    predict_lines,
)
from kg.adapters.itunes_amazon.features import (
    SONG_FEATURES,
    describe_song_features,
    labelled_candidates,
    prepare_songs,
    song_pair_features,
)
from kg.adapters.itunes_amazon.parse import ATTRIBUTES, SOURCES, LabelledPairs, read_pairs
from kg.adapters.itunes_amazon.records import SONG_TYPE, song_records

__all__ = [
    "ATTRIBUTES",
    "CONFIG",
    "SONG_FEATURES",
    "SONG_TYPE",
    "SOURCES",
    "VARIANTS",
    "Config",
    "LabelledPairs",
    "SeedEnsemble",
    "cross_validate",
    "describe_song_features",
    "evaluate_itunes_amazon",
    "fit",
    "labelled_candidates",
    "load_split",
    "predict_lines",
    "prepare_songs",
    "read_pairs",
    "song_pair_features",
    "song_records",
    "train_ensemble",
]
