from shared.metric_labels import BoundedLabels


def test_client_ids_beyond_the_limit_share_one_label() -> None:
    labels = BoundedLabels(limit=2)
    assert [labels(v) for v in ("a", "b", "c", "a", None, "")] == ["a", "b", "other", "a", "unknown", "unknown"]
