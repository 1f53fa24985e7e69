"""Entity matching: normalise, block into independent partitions, compute pair features.

    plan = plan_partitions(records, default_rules(), n_partitions=64)
    pairs = candidate_pairs(records, plan, partition=7)      # any machine, alone
    feats = pair_features(pairs, prepared=prepare_features(records))

See docs/matching.md for the design (exactly-once ownership, skew guard).
"""

from matching.blocking import (
    BlockingRule,
    PartitionPlan,
    all_candidate_pairs,
    candidate_pairs,
    default_rules,
    episode_credits,
    episode_number,
    name_anagram,
    person_compact,
    person_last_initial,
    person_name_key,
    person_one_typo,
    person_skeleton,
    person_tokens,
    plan_partitions,
    shared_people,
    title_exact,
    title_prefix,
    title_tokens,
    title_year_band,
    token_year_band,
)
from matching.blocking_report import BlockingReport, block_size_histogram, blocking_report, canonical_pairs
from matching.features import FEATURE_REGISTRY, Feature, describe_features, pair_features, prepare_features
from matching.normalize import normalize_person, normalize_title, sequel_number

__all__ = [
    "FEATURE_REGISTRY",
    "BlockingReport",
    "BlockingRule",
    "Feature",
    "PartitionPlan",
    "all_candidate_pairs",
    "block_size_histogram",
    "blocking_report",
    "canonical_pairs",
    "candidate_pairs",
    "default_rules",
    "describe_features",
    "episode_credits",
    "episode_number",
    "name_anagram",
    "normalize_person",
    "normalize_title",
    "pair_features",
    "person_compact",
    "person_last_initial",
    "person_name_key",
    "person_one_typo",
    "person_skeleton",
    "person_tokens",
    "plan_partitions",
    "prepare_features",
    "sequel_number",
    "shared_people",
    "title_exact",
    "title_prefix",
    "title_tokens",
    "title_year_band",
    "token_year_band",
]
