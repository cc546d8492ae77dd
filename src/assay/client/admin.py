"""`client.tokens` and `client.lifecycle`: administering the server's workspace over HTTP
(the `TokensAPI` and `LifecycleAPI` contracts; an admin token)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from assay.client.http import Part, parse
from assay.lifecycle.api import GRACE_S

if TYPE_CHECKING:
    from assay.auth.entities import Token
    from assay.client.data import DataClient
    from assay.client.http import Http
    from assay.client.models import ModelsClient
    from assay.lifecycle.entities import Collection, Deleted


class TokensClient(Part):
    """The server's API tokens: what `TokenService` offers."""

    def create(self, name: str, scope: str) -> tuple[Token, str]:
        from assay.auth.entities import Token

        doc = self._call("POST", "/tokens", json={"name": name, "scope": scope})
        return parse(Token, doc["token"]), str(doc["secret"])

    def tokens(self) -> list[Token]:
        from assay.auth.entities import Token

        return self._list(Token, "/tokens")

    def revoke(self, name: str) -> Token:
        from assay.auth.entities import Token

        return parse(Token, self._call("DELETE", f"/tokens/{name}"))


class LifecycleClient(Part):
    """Deleting and collecting on the server: what `LifecycleService` offers."""

    def __init__(self, http: Http, data: DataClient, models: ModelsClient) -> None:
        super().__init__(http)
        self._data = data
        self._models = models

    def delete_runs(self, refs: Sequence[str], *, force: bool = False) -> Deleted:
        """Delete runs: refused while a model came from one, unless `force`."""
        from assay.lifecycle.entities import Deleted

        doc = self._call("POST", "/runs/delete", params={"force": force},
                         json={"runs": list(refs)})  # fmt: skip
        return parse(Deleted, doc)

    def delete_model(self, ref: str, *, force: bool = False) -> Deleted:
        """Delete a model version."""
        from assay.lifecycle.entities import Deleted

        mv = self._models.resolve(ref)
        doc = self._call("DELETE", f"/models/{mv.name}/versions/{mv.version}",
                         params={"force": force})  # fmt: skip
        return parse(Deleted, doc)

    def delete_data(self, ref: str, *, force: bool = False) -> Deleted:
        """Delete a data version."""
        from assay.lifecycle.entities import Deleted

        dv = self._data.resolve(ref)
        doc = self._call("DELETE", f"/datasets/{dv.dataset}/versions/{dv.number}",
                         params={"force": force})  # fmt: skip
        return parse(Deleted, doc)

    def collect(self, *, dry_run: bool = False, grace_s: float = GRACE_S) -> Collection:
        """`assay gc` on the server's workspace."""
        from assay.lifecycle.entities import Collection

        doc = self._call("POST", "/gc", json={"dry_run": dry_run, "grace_s": grace_s})
        return parse(Collection, doc)
