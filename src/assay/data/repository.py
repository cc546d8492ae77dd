"""The data repository's tables and the mapping between rows and entities.

SQLAlchemy Core rather than the ORM: every statement here is explicit, bulk
writes stay cheap, and a CLI command does not pay for loading the ORM.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Row,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    bindparam,
    delete,
    insert,
    select,
    update,
)

from assay.data.entities import Dataset, DataVersion
from assay.store import versioned
from assay.store.db import aware, metadata, utcnow

DatasetRow = Row[Any]
DataVersionRow = Row[Any]


datasets = Table(
    "datasets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

data_versions = Table(
    "data_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("dataset_id", ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("manifest", String(64), nullable=False),
    Column("message", Text, nullable=False),
    Column("author", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("parent", Integer, nullable=True),
    Column("file_count", Integer, nullable=False),
    Column("total_bytes", BigInteger, nullable=False),
    Column("validation", String(16), nullable=True),
    UniqueConstraint("dataset_id", "number"),
    # "Is this content a version already, and which is the newest?" (params files: one
    # per run, reused when equal). With `number` in it, one seek answers.
    Index("ix_data_versions_dataset_manifest_number", "dataset_id", "manifest", "number"),
)

data_tags = Table(
    "data_tags",
    metadata,
    Column("dataset_id", ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True),
    Column("tag", String(64), primary_key=True),
    Column("number", Integer, nullable=False),
)

# Profiles are keyed by the file's content hash: a file profiled once, wherever it recurs.
table_profiles = Table(
    "table_profiles",
    metadata,
    Column("object_hash", String(64), primary_key=True),
    Column("profile", JSON, nullable=False),
)

data_validations = Table(
    "data_validations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version_id", ForeignKey("data_versions.id", ondelete="CASCADE"), nullable=False),
    Column("checks_hash", String(64), nullable=False),
    Column("passed", Boolean, nullable=False),
    Column("report", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Run params are committed as data versions, one per new params file: built once, this
# lookup's cache key is too (most of what SQLAlchemy costs a call).
_HEAD = (
    select(data_versions)
    .where(data_versions.c.dataset_id == bindparam("h_ds"))
    .order_by(data_versions.c.number.desc())
    .limit(1)
)
_WITH_MANIFEST = (
    select(data_versions)
    .where(
        data_versions.c.dataset_id == bindparam("w_ds"),
        data_versions.c.manifest == bindparam("w_manifest"),
    )
    .order_by(data_versions.c.number.desc())
    .limit(1)
)

# A dataset's id by name, with its newest version holding a manifest when there is one
# (a run's params: one statement where a run makes each count).
_NAMED_WITH_MANIFEST = (
    select(datasets.c.id.label("ds_id"), data_versions)
    .select_from(
        datasets.outerjoin(
            data_versions,
            and_(
                data_versions.c.dataset_id == datasets.c.id,
                data_versions.c.manifest == bindparam("m_manifest"),
            ),
        )
    )
    .where(datasets.c.name == bindparam("m_name"))
    .order_by(data_versions.c.number.desc())
    .limit(1)
)


class DataRepository:
    """Row access within one transaction; returns rows or entities."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def dataset_row(self, name: str) -> DatasetRow | None:
        return versioned.named_row(self.conn, datasets, name)

    def get_or_create_dataset(self, name: str) -> DatasetRow:
        return versioned.get_or_create(self.conn, datasets, name)

    def datasets(self) -> list[Dataset]:
        rows = versioned.summaries(self.conn, datasets, data_versions, data_versions.c.dataset_id)
        return [
            Dataset(
                name=r.name,
                created_at=aware(r.created_at),
                versions=r.n or 0,
                latest=r.latest,
                updated_at=aware(r.updated) if r.updated else None,
            )
            for r in rows
        ]

    def latest_number(self, dataset_id: int) -> int | None:
        return versioned.latest_number(
            self.conn, data_versions, data_versions.c.dataset_id, dataset_id
        )

    def next_number(self, dataset_id: int) -> int:
        """The next version's number: deleted versions' numbers are never reused."""
        return versioned.next_number(
            self.conn, data_versions, data_versions.c.dataset_id, dataset_id, "data"
        )

    def newest_and_next(self, dataset_id: int) -> tuple[int | None, int]:
        """The newest version's number, and the next one's (`next_number`)."""
        return versioned.newest_and_next(
            self.conn, data_versions, data_versions.c.dataset_id, dataset_id, "data"
        )

    def version_row(self, dataset_id: int, number: int) -> DataVersionRow | None:
        v = data_versions.c
        return self.conn.execute(
            select(data_versions).where(v.dataset_id == dataset_id, v.number == number)
        ).first()

    def head_row(self, dataset_id: int) -> DataVersionRow | None:
        """The newest version (a deleted one is not a version): its number is the latest."""
        return self.conn.execute(_HEAD, {"h_ds": dataset_id}).first()

    def version_with_manifest(self, dataset_id: int, manifest: str) -> DataVersionRow | None:
        return self.conn.execute(
            _WITH_MANIFEST, {"w_ds": dataset_id, "w_manifest": manifest}
        ).first()

    def named_with_manifest(self, name: str, manifest: str) -> tuple[int | None, Any]:
        """The id of dataset `name` (None: no such dataset) and its newest version whose
        manifest is `manifest` (None: none is)."""
        row = self.conn.execute(
            _NAMED_WITH_MANIFEST, {"m_name": name, "m_manifest": manifest}
        ).first()
        if row is None:
            return None, None
        return row.ds_id, (row if row.number is not None else None)

    def version_rows(self, dataset_id: int) -> list[DataVersionRow]:
        v = data_versions.c
        return list(
            self.conn.execute(
                select(data_versions).where(v.dataset_id == dataset_id).order_by(v.number.desc())
            )
        )

    def all_version_rows(self) -> list[tuple[str, DataVersionRow]]:
        rows = self.conn.execute(
            select(datasets.c.name.label("dataset_name"), data_versions).join(
                data_versions, data_versions.c.dataset_id == datasets.c.id
            )
        )
        return [(row.dataset_name, row) for row in rows]

    def insert_version(self, **values: Any) -> DataVersionRow:
        """Insert a version; the unique (dataset, number) constraint refuses a taken number."""
        new_id = self.conn.execute(insert(data_versions).values(**values)).inserted_primary_key
        assert new_id is not None
        row = self.conn.execute(
            select(data_versions).where(data_versions.c.id == new_id[0])
        ).first()
        assert row is not None
        return row

    def add_version(self, values: dict[str, Any]) -> None:
        """Insert a version without reading it back (the caller holds its values)."""
        self.conn.execute(insert(data_versions), values)  # one cached statement per set of keys

    def set_validation(self, version_id: int, status: str) -> None:
        self.conn.execute(
            update(data_versions).where(data_versions.c.id == version_id).values(validation=status)
        )

    def tag_number(self, dataset_id: int, tag: str) -> int | None:
        t = data_tags.c
        found: int | None = self.conn.scalar(
            select(t.number).where(t.dataset_id == dataset_id, t.tag == tag)
        )
        return found

    def delete_version(self, dataset_id: int, number: int, by: str) -> list[str]:
        """Remove a version's row (its validations go with it) and the tags on it, and
        retire its number; returns the tags removed."""
        t = data_tags.c
        tags = list(
            self.conn.scalars(select(t.tag).where(t.dataset_id == dataset_id, t.number == number))
        )
        self.conn.execute(delete(data_tags).where(t.dataset_id == dataset_id, t.number == number))
        v = data_versions.c
        self.conn.execute(
            delete(data_versions).where(v.dataset_id == dataset_id, v.number == number)
        )
        versioned.retire(self.conn, "data", dataset_id, number, by)
        return tags

    def manifests(self) -> list[str]:
        """Every version's manifest hash (the roots of what the store must keep)."""
        return list(self.conn.scalars(select(data_versions.c.manifest).distinct()))

    def tags_by_number(self, dataset_id: int) -> dict[int, list[str]]:
        t = data_tags.c
        out: dict[int, list[str]] = {}
        for tag, number in self.conn.execute(
            select(t.tag, t.number).where(t.dataset_id == dataset_id).order_by(t.tag)
        ):
            out.setdefault(number, []).append(tag)
        return out

    def set_tag(self, dataset_id: int, tag: str, number: int) -> None:
        t = data_tags.c
        if self.tag_number(dataset_id, tag) is None:
            self.conn.execute(
                insert(data_tags).values(dataset_id=dataset_id, tag=tag, number=number)
            )
        else:
            self.conn.execute(
                update(data_tags)
                .where(t.dataset_id == dataset_id, t.tag == tag)
                .values(number=number)
            )

    def profile(self, object_hash: str) -> dict[str, Any] | None:
        p = table_profiles.c
        found: dict[str, Any] | None = self.conn.scalar(
            select(p.profile).where(p.object_hash == object_hash)
        )
        return found

    def put_profile(self, object_hash: str, profile: dict[str, Any]) -> None:
        """Store a content's profile, replacing an older one."""
        if self.profile(object_hash) is None:
            self.conn.execute(
                insert(table_profiles).values(object_hash=object_hash, profile=profile)
            )
        else:
            p = table_profiles.c
            self.conn.execute(
                update(table_profiles).where(p.object_hash == object_hash).values(profile=profile)
            )

    def add_validation(
        self, version_id: int, checks_hash: str, passed: bool, report: dict[str, Any]
    ) -> None:
        self.conn.execute(
            insert(data_validations).values(
                version_id=version_id,
                checks_hash=checks_hash,
                passed=passed,
                report=report,
                created_at=utcnow(),
            )
        )


def to_version(name: str, row: DataVersionRow, tags: list[str] | None = None) -> DataVersion:
    return DataVersion(
        dataset=name,
        number=row.number,
        manifest=row.manifest,
        message=row.message,
        author=row.author,
        created_at=aware(row.created_at),
        parent=row.parent,
        file_count=row.file_count,
        total_bytes=row.total_bytes,
        validation=row.validation,
        tags=tuple(tags or ()),
    )
