"""DICOMweb client (QIDO-RS search, WADO-RS retrieve, STOW-RS store) over ``requests``."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from medlab._atomic import write_bytes
from medlab.pacs import _common as c
from medlab.pacs._common import PacsError, Retrieval, SearchLevels
from medlab._options import check_int, check_positive, require

_DICOM_PART = 'multipart/related; type="application/dicom"'


def _strip_credentials(url: str) -> tuple[str, str | None, str | None]:
    parts = urlsplit(str(url).rstrip("/"))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"`url` must be an http:// or https:// address of a DICOMweb service; got {parts.scheme!r}")
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    clean = urlunsplit((parts.scheme, host, parts.path, "", ""))
    return clean, parts.username, parts.password


def _check_pem(name: str, path) -> str:
    if not isinstance(path, str | Path) or not Path(path).is_file():
        raise ValueError(f"`{name}` must be True/False or the path of an existing PEM file; got {path!r}")
    return str(path)


def _ssl_reason(exc) -> str:
    """The innermost TLS failure inside a requests/urllib3 error, in words (no URL, so no
    credentials): e.g. 'certificate verify failed: unable to get local issuer certificate'."""
    import ssl

    seen, todo = set(), [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, ssl.SSLCertVerificationError):
            return f"certificate verify failed: {e.verify_message}"
        if isinstance(e, ssl.SSLError):
            return str(e.reason or type(e).__name__)
        todo += [a for a in getattr(e, "args", ()) if isinstance(a, BaseException)]
        todo += [x for x in (getattr(e, "reason", None), e.__cause__, e.__context__) if isinstance(x, BaseException)]
    return type(exc).__name__


def _parts(response) -> list[bytes]:
    """The bodies of a (small) multipart/related response."""
    ctype = response.headers.get("Content-Type", "")
    if not ctype.lower().startswith("multipart/"):
        return [response.content]
    return list(_stream_parts(response))


def _boundary(response) -> bytes:
    ctype = response.headers.get("Content-Type", "")
    for param in ctype.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.lower() == "boundary":
            return value.strip('"').encode()
    raise ValueError(f"multipart response without a boundary ({ctype})")


def _stream_parts(response, chunk_bytes: int = 1 << 20):
    """Yield the bodies of a multipart/related response as each one completes (memory: one
    part), so an interrupted transfer keeps the parts already written."""
    delim = b"\r\n--" + _boundary(response)
    buf = bytearray(b"\r\n")  # the first delimiter has no CRLF before it
    first, searched = True, 0
    for chunk in response.iter_content(chunk_bytes):
        buf += chunk
        while True:
            idx = buf.find(delim, searched)
            if idx < 0:
                searched = max(0, len(buf) - len(delim))
                break
            part = bytes(buf[:idx])
            del buf[: idx + len(delim)]
            searched = 0
            if not first:
                head, sep, body = part.partition(b"\r\n\r\n")
                if sep:
                    yield body
            first = False


class DicomWebClient(SearchLevels):
    """A DICOMweb service (QIDO-RS, WADO-RS, STOW-RS), e.g. Orthanc's, dcm4chee's or a cloud PACS.

    Parameters
    ----------
    url : str
        Base URL of the service, e.g. ``https://pacs.example.org/dicom-web`` (``/studies`` is
        appended). Credentials inside the URL are taken out and used as basic authentication;
        they never appear in messages.
    username, password : str, optional
        HTTP basic authentication.
    token : str, optional
        Bearer token (OAuth2 / OpenID Connect), instead of a user name and password.
    timeout_s : float
        Seconds to wait for the server to answer one request.
    retries : int
        Retries (with exponential back-off from ``backoff_s``) after a refused connection or
        an HTTP 502/503/504 answer.
    backoff_s : float
        First back-off interval in seconds.
    verify : bool or str or os.PathLike
        TLS certificate check for ``https://``: True (the system's certificate authorities),
        the path of a PEM bundle of the authorities to trust, or False (no check: never
        outside a sandbox). A certificate that fails the check is a :class:`PacsError` that
        says why.
    cert : str or os.PathLike or tuple, optional
        This client's certificate for servers that ask for one (mutual TLS): a PEM file
        holding certificate and key, or ``(certificate, key)`` PEM files.

    Examples
    --------
    >>> pacs = DicomWebClient("http://127.0.0.1:8042/dicom-web", username="u", password="p")  # doctest: +SKIP
    >>> pacs.search_series(Modality="CT")  # doctest: +SKIP
    """

    def __init__(self, url: str, *, username: str | None = None, password: str | None = None,
                 token: str | None = None, timeout_s: float = 30.0, retries: int = 3,
                 backoff_s: float = 0.5, verify=True, cert=None):

        require("requests", extra="pacs", purpose="medlab.pacs (DICOMweb)")
        self.url, url_user, url_password = _strip_credentials(url)
        username = username if username is not None else url_user
        password = password if password is not None else url_password
        if token is not None and username is not None:
            raise ValueError("give either `token` or `username`/`password`, not both")
        self._auth = (username, password or "") if username is not None else None
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.timeout_s = check_positive("timeout_s", timeout_s)
        self.retries = check_int("retries", retries, minimum=0)
        self.backoff_s = check_positive("backoff_s", backoff_s, allow_zero=True)
        self.verify = _check_pem("verify", verify) if not isinstance(verify, bool) else verify
        if cert is not None:
            cert = tuple(_check_pem("cert", f) for f in cert) if isinstance(cert, tuple | list) else _check_pem("cert", cert)
        self.cert = cert
        self._local = threading.local()
        self._any_transfer_syntax = True

    def __repr__(self) -> str:
        return f"DicomWebClient({self.url!r})"

    # -- HTTP ---------------------------------------------------------------------------
    def _session(self):
        session = getattr(self._local, "session", None)
        if session is None:
            import requests
            from requests.adapters import HTTPAdapter
            from urllib3.util.retry import Retry

            # other=0: a failed TLS handshake (untrusted certificate) is not retried
            retry = Retry(total=self.retries, connect=self.retries, read=0, other=0, status=self.retries,
                          backoff_factor=self.backoff_s, status_forcelist=(502, 503, 504),
                          allowed_methods=None, raise_on_status=False)
            session = requests.Session()
            adapter = HTTPAdapter(max_retries=retry, pool_maxsize=8)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.auth = self._auth
            session.headers.update(self._headers)
            session.verify = self.verify
            session.cert = self.cert
            self._local.session = session
        return session

    def _request(self, method: str, path: str, *, ok404: bool = False, **kwargs):
        import requests

        what = f"{method} {path.split('?')[0]}"
        try:
            # verify per request: requests lets REQUESTS_CA_BUNDLE override a session's `verify`
            r = self._session().request(method, self.url + path, timeout=self.timeout_s, verify=self.verify,
                                        **kwargs)
        except requests.exceptions.SSLError as exc:
            reason = _ssl_reason(exc)
            hint = ("check `verify` (the certificate authority that signed the server's certificate)"
                    if reason.startswith("certificate verify failed") else
                    "the server may ask for a client certificate it trusts (`cert`)")
            raise PacsError(self.url, f"{what}: TLS failed ({reason}); {hint}") from None
        except requests.exceptions.Timeout:
            raise PacsError(self.url, f"{what}: no answer within {self.timeout_s:g} s (timeout_s)") from None
        except requests.exceptions.ConnectionError as exc:
            from urllib3.exceptions import ReadTimeoutError

            if isinstance(getattr(exc.args[0] if exc.args else None, "reason", None), ReadTimeoutError):
                raise PacsError(self.url, f"{what}: no answer within {self.timeout_s:g} s (timeout_s)") from None
            raise PacsError(self.url, f"{what}: cannot connect (is the server running and the URL right?) "
                                      f"after {self.retries} retries") from None
        if r.status_code in (401, 403):
            who = "no credentials were given" if self._auth is None and not self._headers else "check the user name and password (or token)"
            raise PacsError(self.url, f"{what}: the server refused access (HTTP {r.status_code}); {who}")
        if r.status_code == 404 and ok404:
            return r
        if r.status_code >= 400:
            raise PacsError(self.url, f"{what}: HTTP {r.status_code} {r.reason}")
        return r

    # -- QIDO-RS ------------------------------------------------------------------------
    def echo(self) -> bool:
        """True when the service answers a search with these credentials (else PacsError)."""
        self._request("GET", "/studies", params={"limit": "1"}, headers={"Accept": "application/dicom+json"})
        return True

    def search(self, level: str = "study", *, study_uid: str | None = None, series_uid: str | None = None,
               limit: int | None = None, **filters):
        """Search the PACS (QIDO-RS) at one level; returns one row per match.

        Parameters
        ----------
        level : {'patient', 'study', 'series', 'instance'}
            What to list. QIDO-RS has no patient level: patients are grouped from the
            matching studies (``NumberOfPatientRelatedStudies`` counts the matches).
        study_uid, series_uid : str, optional
            Search inside one study / series (``series_uid`` needs ``study_uid``; both are
            required for instances).
        limit : int, optional
            At most this many rows.
        **filters
            DICOM keywords and values with DICOM matching, e.g. ``PatientID="P1"``,
            ``Modality="CT"``, ``StudyDate="20200101-20201231"``, ``PatientName="DOE*"``.

        Returns
        -------
        pandas.DataFrame
            Columns: the level's return keys (``medlab.pacs.RETURN_KEYS``) then any filter keys.
        """
        level = c.check_level(level)
        filters = c.check_filters(filters)
        if level == "patient":
            keys = [*c.RETURN_KEYS["study"], "PatientBirthDate", "PatientSex"]
            studies = self._qido("/studies", keys, filters, limit=None)
            rows = c.group_patients(studies)
            return c.rows_to_frame(rows[:limit] if limit else rows, "patient")
        if level == "study":
            path = "/studies"
        elif level == "series":
            path = f"/studies/{c.check_uid('study_uid', study_uid)}/series" if study_uid else "/series"
        else:
            if not (study_uid and series_uid):
                raise ValueError("`study_uid` and `series_uid` are both needed to search instances")
            path = f"/studies/{c.check_uid('study_uid', study_uid)}/series/{c.check_uid('series_uid', series_uid)}/instances"
        keys = list(c.RETURN_KEYS[level]) + [k for k in filters if k not in c.RETURN_KEYS[level]]
        rows = self._qido(path, keys, filters, limit=limit)
        if study_uid:
            for r in rows:
                r["StudyInstanceUID"] = r.get("StudyInstanceUID") or study_uid
        if series_uid and level == "instance":
            for r in rows:
                r["SeriesInstanceUID"] = r.get("SeriesInstanceUID") or series_uid
        return c.rows_to_frame(rows, level)

    def _qido(self, path: str, keys, filters: dict, *, limit) -> list[dict]:
        from urllib.parse import urlencode

        params = dict(filters)
        params["includefield"] = ",".join(keys)
        if limit:
            params["limit"] = str(int(limit))
        # wildcards stay literal: some servers (Orthanc 1.10) do not decode %2A before matching
        query = urlencode(params, safe="*?,")
        r = self._request("GET", f"{path}?{query}", headers={"Accept": "application/dicom+json"})
        return [c.json_row(item, keys) for item in (r.json() if r.content else [])]

    # -- WADO-RS ------------------------------------------------------------------------
    def _instance_bytes(self, study_uid: str, series_uid: str, sop_uid: str) -> bytes | None:
        path = f"/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}"
        accept = _DICOM_PART + ("; transfer-syntax=*" if self._any_transfer_syntax else "")
        r = self._request("GET", path, ok404=True, headers={"Accept": accept})
        if r.status_code == 404:
            return None
        parts = _parts(r)
        if len(parts) != 1:
            raise PacsError(self.url, f"instance {sop_uid}: expected one DICOM part, received {len(parts)}")
        return parts[0]

    def retrieve_series(self, study_uid: str, series_uid: str, folder, *, workers: int = 1,
                        progress: bool = True) -> Retrieval:
        """Retrieve one series (WADO-RS) into ``folder`` as ``<SOPInstanceUID>.dcm`` files.

        Instances already in the folder are skipped, so a rerun after an interruption
        fetches only what is missing. Each file is written to a temporary name and renamed,
        so the folder never holds a half-written instance. When the series gains instances
        during the retrieval they are fetched too.

        Transfer: with ``workers=1`` and an empty folder, one series request whose parts are
        written as they arrive; otherwise one request per missing instance, ``workers`` at a
        time.

        Parameters
        ----------
        study_uid, series_uid : str
            The series.
        folder : str or os.PathLike
            Output folder (created).
        workers : int
            Parallel HTTP requests.
        progress : bool
            Show a progress bar (tqdm).

        Returns
        -------
        Retrieval
            Files, counts, bytes and seconds.

        Raises
        ------
        PacsError
            The server cannot be reached or refuses the credentials, the series is unknown,
            or instances it lists are not delivered (``missing``; ``retrieved`` lists what
            is complete in the folder).
        """

        study_uid, series_uid = c.check_uid("study_uid", study_uid), c.check_uid("series_uid", series_uid)
        workers = check_int("workers", workers, minimum=1)
        folder = c.prepare_folder(folder)
        result = Retrieval(folder)
        t0 = time.perf_counter()
        missing: dict[str, None] = {}
        attempted: set[str] = set()
        for _ in range(3):  # a series that gains instances while we retrieve gets another pass
            listed = self._list_instances(study_uid, series_uid)
            if not listed and not attempted:
                raise PacsError(self.url, f"series {series_uid} of study {study_uid} has no instances on the server")
            todo = [u for u in listed if u not in attempted and not c.instance_path(folder, u).exists()]
            result.skipped += sum(1 for u in listed if u not in attempted and c.instance_path(folder, u).exists())
            attempted.update(listed)
            if not todo:
                break
            if workers == 1 and len(todo) == len(listed) > 1:
                self._fetch_series(study_uid, series_uid, set(todo), folder, progress, result)
                todo = [u for u in todo if not c.instance_path(folder, u).exists()]
            if todo:
                self._fetch(study_uid, series_uid, todo, folder, workers, progress, result, missing)
        result.seconds = time.perf_counter() - t0
        result.files = sorted(c.instance_path(folder, u) for u in attempted if c.instance_path(folder, u).exists())
        if missing:
            raise PacsError(self.url, f"series {series_uid}: {len(missing)} listed instance(s) were not delivered "
                                      f"(first: {next(iter(missing))}); rerun to retry",
                            retrieved=result.files, missing=list(missing))
        return result

    def _list_instances(self, study_uid: str, series_uid: str) -> list[str]:
        rows = self._qido(f"/studies/{study_uid}/series/{series_uid}/instances", ["SOPInstanceUID"], {}, limit=None)
        return [r["SOPInstanceUID"] for r in rows if r.get("SOPInstanceUID")]

    def _fetch_series(self, study_uid, series_uid, wanted: set, folder: Path, progress, result) -> None:
        """One WADO-RS series request, each part written as it arrives."""
        import io

        import pydicom

        path = f"/studies/{study_uid}/series/{series_uid}"
        accept = _DICOM_PART + ("; transfer-syntax=*" if self._any_transfer_syntax else "")
        r = self._request("GET", path, ok404=True, headers={"Accept": accept}, stream=True)
        if r.status_code == 404:
            return  # listed but gone: the per-instance pass names what is missing
        bar = c.progress_bar(len(wanted), "WADO-RS", progress)
        try:
            for data in _stream_parts(r):
                try:
                    uid = str(pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True,
                                              specific_tags=["SOPInstanceUID"]).SOPInstanceUID)
                except Exception:
                    raise PacsError(self.url, f"series {series_uid}: the server sent a part that is not DICOM") from None
                if not c.is_uid(uid):
                    raise PacsError(self.url, f"series {series_uid}: the server sent an instance with an invalid UID")
                if c.instance_path(folder, uid).exists():
                    continue
                write_bytes(c.instance_path(folder, uid), data)
                result.retrieved += 1
                result.bytes += len(data)
                bar.update(1)
        except PacsError as exc:
            raise PacsError(exc.server, exc.reason, retrieved=sorted(folder.glob("*.dcm"))) from None
        except OSError as exc:  # connection lost mid-stream: keep what is complete
            raise PacsError(self.url, f"series {series_uid}: transfer interrupted ({type(exc).__name__}); "
                                      "rerun to resume", retrieved=sorted(folder.glob("*.dcm"))) from None
        finally:
            r.close()
            bar.close()

    def _fetch(self, study_uid, series_uid, todo, folder: Path, workers, progress, result, missing) -> None:
        lock = threading.Lock()
        bar = c.progress_bar(len(todo), "WADO-RS", progress)

        def one(uid: str):
            try:
                data = self._instance_bytes(study_uid, series_uid, uid)
            except PacsError as exc:
                if self._any_transfer_syntax and ("HTTP 406" in exc.reason or "HTTP 400" in exc.reason):
                    self._any_transfer_syntax = False  # the server cannot send "as stored"
                    data = self._instance_bytes(study_uid, series_uid, uid)
                else:
                    raise
            if data is None:
                with lock:
                    missing[uid] = None
            else:
                c.check_sop_uid(data, uid, self.url)
                write_bytes(c.instance_path(folder, uid), data)
                with lock:
                    result.retrieved += 1
                    result.bytes += len(data)
            bar.update(1)

        try:
            if workers == 1:
                for uid in todo:
                    one(uid)
            else:
                with ThreadPoolExecutor(workers, thread_name_prefix="medlab-wado") as pool:
                    for f in [pool.submit(one, u) for u in todo]:
                        f.result()
        except PacsError as exc:
            done = sorted(p for p in folder.glob("*.dcm"))
            raise PacsError(exc.server, exc.reason, retrieved=done, missing=list(missing)) from None
        finally:
            bar.close()

    def retrieve_image(self, study_uid: str, series_uid: str, *, folder=None, workers: int = 1,
                       progress: bool = True, **read_options):
        """Retrieve a series and read it with :func:`medlab.io.read` (keyword options such as
        ``pet_units`` are passed on). Without ``folder`` the files go to a temporary folder
        that is removed after reading.

        Returns
        -------
        SimpleITK.Image
            The series volume with its physical geometry (CT in HU, PET in SUV by default).
        """
        return _retrieve_image(self, study_uid, series_uid, folder=folder, workers=workers,
                               progress=progress, read_options=read_options)

    # -- STOW-RS ------------------------------------------------------------------------
    def store(self, files, *, batch_mb: float = 32.0, progress: bool = True) -> list[str]:
        """Store DICOM files or pydicom datasets (STOW-RS); returns the SOPInstanceUIDs stored.

        Parameters
        ----------
        files : path, pydicom.Dataset, or a list of them
            A folder stores every file in it (not recursive).
        batch_mb : float
            Files are sent in requests of about this many megabytes.
        progress : bool
            Show a progress bar.

        Raises
        ------
        PacsError
            When the server refuses any instance (its UID and the failure reason are named).
        """
        items = _store_items(files)
        out: list[str] = []
        bar = c.progress_bar(len(items), "STOW-RS", progress)
        batch, size = [], 0
        try:
            for uid, data in items:
                batch.append((uid, data))
                size += len(data)
                if size >= batch_mb * 1e6:
                    out += self._stow(batch)
                    bar.update(len(batch))
                    batch, size = [], 0
            if batch:
                out += self._stow(batch)
                bar.update(len(batch))
        finally:
            bar.close()
        return out

    def _stow(self, batch) -> list[str]:
        import pydicom

        boundary = uuid.uuid4().hex
        chunks = []
        for _, data in batch:
            chunks += [f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode(), data, b"\r\n"]
        chunks.append(f"--{boundary}--\r\n".encode())
        headers = {"Content-Type": f'{_DICOM_PART}; boundary="{boundary}"', "Accept": "application/dicom+json"}
        r = self._request("POST", "/studies", data=b"".join(chunks), headers=headers)
        stored, failed = [], []
        if r.content:
            ds = pydicom.Dataset.from_json(r.json())
            stored = [str(i.ReferencedSOPInstanceUID) for i in ds.get("ReferencedSOPSequence", [])]
            failed = [(str(i.get("ReferencedSOPInstanceUID", "?")), i.get("FailureReason", "?"))
                      for i in ds.get("FailedSOPSequence", [])]
        if failed:
            uid, why = failed[0]
            raise PacsError(self.url, f"STOW-RS refused {len(failed)} instance(s) (first: {uid}, failure reason "
                                      f"{why}); {len(stored)} stored")
        return stored


def _store_items(files) -> list[tuple[str, bytes]]:
    """(SOPInstanceUID, file bytes) of DICOM files, folders and datasets."""
    import io

    import pydicom

    if isinstance(files, str | Path | pydicom.Dataset):
        files = [files]
    items = []
    for f in files:
        if isinstance(f, pydicom.Dataset):
            items.append((str(f.SOPInstanceUID), c.dataset_bytes(f)))
            continue
        paths = sorted(p for p in Path(f).iterdir() if p.is_file()) if Path(f).is_dir() else [Path(f)]
        for p in paths:
            if not p.exists():
                raise ValueError(f"`files`: {p} does not exist")
            data = p.read_bytes()
            try:
                ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, specific_tags=["SOPInstanceUID"])
                uid = str(ds.SOPInstanceUID)
            except Exception as exc:
                raise ValueError(f"`files`: {p} is not a DICOM file with a SOPInstanceUID ({exc})") from None
            items.append((uid, data))
    if not items:
        raise ValueError("`files` holds no DICOM file")
    return items


def _retrieve_image(client, study_uid, series_uid, *, folder, workers, progress, read_options):
    import tempfile

    import medlab.io

    if folder is not None:
        res = client.retrieve_series(study_uid, series_uid, folder, workers=workers, progress=progress)
        return medlab.io.read(res.folder, series_uid=series_uid, **read_options)
    with tempfile.TemporaryDirectory(prefix="medlab-pacs-") as tmp:
        res = client.retrieve_series(study_uid, series_uid, tmp, workers=workers, progress=progress)
        return medlab.io.read(res.folder, series_uid=series_uid, **read_options)
