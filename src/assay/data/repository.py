"""The data repository's tables and the mapping between rows and entities."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from assay.data.entities import Dataset, DataVersion
from assay.store.db import Base


def utcnow() -> datetime:
    return datetime.now(UTC)


class DatasetRow(Base):
    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DataVersionRow(Base):
    __tablename__ = "data_versions"
    __table_args__ = (UniqueConstraint("dataset_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    manifest: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    parent: Mapped[int | None] = mapped_column(Integer, nullable=True)
    file_count: Mapped[int] = mapped_column(Integer)
    total_bytes: Mapped[int] = mapped_column(BigInteger)
    validation: Mapped[str | None] = mapped_column(String(16), nullable=True)


class DataTagRow(Base):
    __tablename__ = "data_tags"

    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)
    number: Mapped[int] = mapped_column(Integer)


class TableProfileRow(Base):
    """Profiles are keyed by the file's content hash: a file profiled once, wherever it recurs."""

    __tablename__ = "table_profiles"

    object_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    profile: Mapped[dict[str, Any]] = mapped_column(JSON)


class ValidationRow(Base):
    __tablename__ = "data_validations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("data_versions.id", ondelete="CASCADE"))
    checks_hash: Mapped[str] = mapped_column(String(64))
    passed: Mapped[bool] = mapped_column(Boolean)
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


def _aware(ts: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


class DataRepository:
    """Row access for one session; returns entities."""

    def __init__(self, session: Session) -> None:
        self.s = session

    def dataset_row(self, name: str) -> DatasetRow | None:
        return self.s.scalars(select(DatasetRow).where(DatasetRow.name == name)).first()

    def get_or_create_dataset(self, name: str) -> DatasetRow:
        row = self.dataset_row(name)
        if row is None:
            row = DatasetRow(name=name, created_at=utcnow())
            self.s.add(row)
            self.s.flush()
        return row

    def datasets(self) -> list[Dataset]:
        stats = (
            select(
                DataVersionRow.dataset_id,
                func.count().label("n"),
                func.max(DataVersionRow.number).label("latest"),
                func.max(DataVersionRow.created_at).label("updated"),
            )
            .group_by(DataVersionRow.dataset_id)
            .subquery()
        )
        rows = self.s.execute(
            select(DatasetRow, stats.c.n, stats.c.latest, stats.c.updated)
            .outerjoin(stats, stats.c.dataset_id == DatasetRow.id)
            .order_by(DatasetRow.name)
        ).all()
        return [
            Dataset(
                name=d.name,
                created_at=_aware(d.created_at),
                versions=n or 0,
                latest=latest,
                updated_at=_aware(updated) if updated else None,
            )
            for d, n, latest, updated in rows
        ]

    def latest_number(self, dataset_id: int) -> int | None:
        return self.s.scalar(
            select(func.max(DataVersionRow.number)).where(DataVersionRow.dataset_id == dataset_id)
        )

    def version_row(self, dataset_id: int, number: int) -> DataVersionRow | None:
        return self.s.scalars(
            select(DataVersionRow).where(
                DataVersionRow.dataset_id == dataset_id, DataVersionRow.number == number
            )
        ).first()

    def version_rows(self, dataset_id: int) -> list[DataVersionRow]:
        return list(
            self.s.scalars(
                select(DataVersionRow)
                .where(DataVersionRow.dataset_id == dataset_id)
                .order_by(DataVersionRow.number.desc())
            )
        )

    def all_version_rows(self) -> list[tuple[str, DataVersionRow]]:
        rows = self.s.execute(
            select(DatasetRow.name, DataVersionRow).join(
                DataVersionRow, DataVersionRow.dataset_id == DatasetRow.id
            )
        ).all()
        return [(name, v) for name, v in rows]

    def tag_number(self, dataset_id: int, tag: str) -> int | None:
        row = self.s.get(DataTagRow, (dataset_id, tag))
        return row.number if row else None

    def tags_by_number(self, dataset_id: int) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for row in self.s.scalars(
            select(DataTagRow).where(DataTagRow.dataset_id == dataset_id).order_by(DataTagRow.tag)
        ):
            out.setdefault(row.number, []).append(row.tag)
        return out

    def set_tag(self, dataset_id: int, tag: str, number: int) -> None:
        row = self.s.get(DataTagRow, (dataset_id, tag))
        if row is None:
            self.s.add(DataTagRow(dataset_id=dataset_id, tag=tag, number=number))
        else:
            row.number = number

    def profile(self, object_hash: str) -> dict[str, Any] | None:
        row = self.s.get(TableProfileRow, object_hash)
        return row.profile if row else None

    def profiled(self, hashes: set[str]) -> set[str]:
        if not hashes:
            return set()
        found = self.s.scalars(
            select(TableProfileRow.object_hash).where(TableProfileRow.object_hash.in_(hashes))
        )
        return set(found)

    def add_profile(self, object_hash: str, profile: dict[str, Any]) -> None:
        if self.s.get(TableProfileRow, object_hash) is None:
            self.s.add(TableProfileRow(object_hash=object_hash, profile=profile))

    def add_validation(
        self, version_id: int, checks_hash: str, passed: bool, report: dict[str, Any]
    ) -> None:
        self.s.add(
            ValidationRow(
                version_id=version_id,
                checks_hash=checks_hash,
                passed=passed,
                report=report,
                created_at=utcnow(),
            )
        )

    def latest_validation(self, version_id: int) -> ValidationRow | None:
        return self.s.scalars(
            select(ValidationRow)
            .where(ValidationRow.version_id == version_id)
            .order_by(ValidationRow.id.desc())
        ).first()


def to_version(name: str, row: DataVersionRow, tags: list[str] | None = None) -> DataVersion:
    return DataVersion(
        dataset=name,
        number=row.number,
        manifest=row.manifest,
        message=row.message,
        author=row.author,
        created_at=_aware(row.created_at),
        parent=row.parent,
        file_count=row.file_count,
        total_bytes=row.total_bytes,
        validation=row.validation,
        tags=tuple(tags or ()),
    )
