"""corpus.sources: what a folder, a glob, a text file or an S3 prefix holds, and what is bad before embedding."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from omnisearch_corpus import cli as embed_corpus
from omnisearch_corpus import sources
from tests.corpus.corpus_data import make_pictures


def test_a_glob_takes_its_matches_with_ids_below_its_fixed_part(tmp_path):
    names = make_pictures(tmp_path / "shapes")
    corpus = sources.discover(str(tmp_path / "shapes" / "*.png"))
    assert corpus.kind == "image"
    assert [i.id for i in corpus.items] == sorted(n for n in [*names, "04-broken.png"] if n.endswith(".png"))


def test_a_folder_ignores_other_files_and_recurses(tmp_path):
    make_pictures(tmp_path / "shapes")
    (tmp_path / "shapes" / "more").mkdir()
    (tmp_path / "shapes" / "more" / "x.PNG").write_bytes(b"\x89PNG")
    corpus = sources.discover(str(tmp_path / "shapes"))
    assert corpus.ignored == 1 and "more/x.PNG" in [i.id for i in corpus.items]


def test_duplicate_ids_and_bad_lines_are_items_with_errors(tmp_path):
    path = tmp_path / "docs.jsonl"
    lines = [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}, "not an object", {"text": "no id"}]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n{broken\n")
    items = sources.discover(str(path)).items
    assert [i.error[0] if i.error else None for i in items] == [
        None,
        "duplicate_id",
        "missing_id",
        "missing_id",
        "invalid_record",
    ]


def test_a_csv_without_the_named_columns_is_a_usage_error(tmp_path, capsys):
    path = tmp_path / "docs.csv"
    path.write_text("sku,caption\n1,a red circle\n")
    with pytest.raises(SystemExit) as stopped:
        embed_corpus.main([str(path), "--output", str(tmp_path / "o.parquet")])
    assert stopped.value.code == 2 and "no column 'id', 'text'" in capsys.readouterr().err


def test_a_folder_cannot_be_texts(tmp_path):
    make_pictures(tmp_path / "shapes")
    with pytest.raises(sources.SourceError, match="folder"):
        sources.discover(str(tmp_path / "shapes"), "text")


def test_an_s3_prefix_lists_images_by_etag_and_reads_text_files():
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="corpus-b")
        s3.put_object(Bucket="corpus-b", Key="p/a.png", Body=b"png bytes")
        s3.put_object(Bucket="corpus-b", Key="p/sub/b.jpg", Body=b"jpg bytes")
        s3.put_object(Bucket="corpus-b", Key="p/readme.md", Body=b"# hi")
        corpus = sources.discover("s3://corpus-b/p/", s3=s3)
        assert corpus.kind == "image" and corpus.ignored == 1 and corpus.s3_prefix == ("corpus-b", "p/")
        assert [(i.id, i.source) for i in corpus.items] == [
            ("a.png", "s3://corpus-b/p/a.png"),
            ("sub/b.jpg", "s3://corpus-b/p/sub/b.jpg"),
        ]
        assert all(i.key.startswith("etag:") for i in corpus.items)
        assert sources.read_item(corpus.items[0], s3)[0] == b"png bytes"

        s3.put_object(Bucket="corpus-b", Key="p/captions.txt", Body=b"a red circle\na blue star\n")
        with pytest.raises(sources.SourceError, match="both images and text"):
            sources.discover("s3://corpus-b/p/", s3=s3)
        texts = sources.discover("s3://corpus-b/p/", "text", s3=s3)
        assert [(i.id, i.text) for i in texts.items] == [
            ("captions.txt:1", "a red circle"),
            ("captions.txt:2", "a blue star"),
        ]
