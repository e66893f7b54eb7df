"""DIMSE client (C-ECHO, C-FIND, C-GET, C-STORE) over pynetdicom."""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from medlab._atomic import write_bytes
from medlab.pacs import _common as c
from medlab.pacs._common import PacsError, Retrieval, SearchLevels
from medlab._options import check_int, check_positive, require

_LEVEL = {"patient": "PATIENT", "study": "STUDY", "series": "SERIES", "instance": "IMAGE"}
_UIDS_PER_GET = 200  # SOPInstanceUIDs per C-GET identifier (UID list matching)


def _syntaxes() -> list:
    """Transfer syntaxes this client accepts for received instances (stored as sent)."""
    from pydicom import uid

    return [uid.ExplicitVRLittleEndian, uid.ImplicitVRLittleEndian, uid.DeflatedExplicitVRLittleEndian,
            uid.ExplicitVRBigEndian, uid.JPEGBaseline8Bit, uid.JPEGExtended12Bit, uid.JPEGLosslessSV1,
            uid.JPEGLSLossless, uid.JPEG2000Lossless, uid.JPEG2000, uid.RLELossless]


class _Sink:
    """C-STORE handler (C-GET sub-operations or a C-MOVE destination): each instance is
    written atomically as ``<SOPInstanceUID>.dcm``; failures are kept for one error later."""

    def __init__(self, folder, result, bar):
        self.folder, self.result, self.bar = folder, result, bar
        self.lock = threading.Lock()
        self.errors: list[str] = []

    def __call__(self, event):
        uid = str(event.request.AffectedSOPInstanceUID)
        try:
            if not c.is_uid(uid):
                raise ValueError("invalid SOPInstanceUID")
            path = c.instance_path(self.folder, uid)
            if not path.exists():
                data = event.encoded_dataset()
                write_bytes(path, data)
                with self.lock:
                    self.result.retrieved += 1
                    self.result.bytes += len(data)
            self.bar.update(1)
        except Exception as exc:  # reported after the association; the PACS sees a failure
            self.errors.append(f"{uid}: {exc}")
            return 0xA700
        return 0x0000


def _quiet_logs() -> None:
    """pynetdicom logs each association at INFO/ERROR; our errors say what failed."""
    import logging

    logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)


class DimseClient(SearchLevels):
    """A PACS over classic DICOM networking (DIMSE): C-ECHO, C-FIND, C-GET, C-STORE.

    The PACS must know this client's AE title (``calling_aet``); DIMSE has no passwords.
    Retrieval uses C-GET (the instances come back on the same association), so no port
    has to be opened on this machine.

    Parameters
    ----------
    host : str
        Host name or address of the PACS.
    port : int
        Its DICOM port.
    called_aet : str
        The PACS's AE title.
    calling_aet : str
        This client's AE title, as registered in the PACS.
    timeout_s : float
        Seconds to wait for the connection and for each answer.
    tls : ssl.SSLContext, optional
        DICOM TLS, when the PACS offers it: a client context that trusts the PACS's
        certificate authority (``ssl.create_default_context(cafile=CA)``; the host name is
        checked against the PACS's certificate) and, when the PACS asks for one, presents this
        client's certificate (``ctx.load_cert_chain(CERT, KEY)``). A handshake that fails is
        a :class:`PacsError` that says why (certificate not trusted, client certificate
        refused, no TLS on that port). Not with ``move_port``.
    move_port : int, optional
        Retrieve with C-MOVE instead of C-GET (many PACS offer only C-MOVE): for the time of
        a retrieval this client listens on ``move_port`` for the instances, which the PACS
        sends to ``calling_aet`` (it must know that AE title with this host and port). Only
        the PACS (``called_aet``) may connect.
    move_bind : str
        Address the C-MOVE listener binds to (default all interfaces; '127.0.0.1' when the
        PACS runs on this machine).
    """

    def __init__(self, host: str, port: int, *, called_aet: str = "ANY-SCP", calling_aet: str = "MEDLAB",
                 timeout_s: float = 30.0, tls=None, move_port: int | None = None, move_bind: str = "0.0.0.0"):

        require("pynetdicom", extra="pacs", purpose="medlab.pacs (DIMSE)")
        self.host = str(host)
        self.port = check_int("port", port, minimum=1)
        for name, aet in (("called_aet", called_aet), ("calling_aet", calling_aet)):
            if not aet or len(aet) > 16:
                raise ValueError(f"`{name}` must be an AE title of 1-16 characters; got {aet!r}")
        self.called_aet, self.calling_aet = called_aet, calling_aet
        self.timeout_s = check_positive("timeout_s", timeout_s)
        if tls is not None:
            import ssl

            if not isinstance(tls, ssl.SSLContext):
                raise ValueError(f"`tls` must be an ssl.SSLContext (or None); got {type(tls).__name__}")
            if move_port is not None:
                raise ValueError("`tls` and `move_port`: C-MOVE's listener has no TLS here; retrieve by C-GET "
                                 "(leave out `move_port`)")
        self.tls = tls
        self.move_port = None if move_port is None else check_int("move_port", move_port, minimum=1)
        self.move_bind = str(move_bind)
        self.server = f"{called_aet}@{self.host}:{self.port}"
        _quiet_logs()

    def __repr__(self) -> str:
        return f"DimseClient({self.server!r}, calling_aet={self.calling_aet!r})"

    # -- association ----------------------------------------------------------------------
    def _associate(self, contexts, *, ext_neg=None, handlers=None):
        from pynetdicom import AE, evt

        try:  # tell "PACS down" from "PACS refuses us"
            with socket.create_connection((self.host, self.port), timeout=self.timeout_s):
                pass
        except OSError as exc:
            raise PacsError(self.server, f"cannot connect (is the PACS running and the port right?): "
                                         f"{exc.strerror or exc}") from None
        if self.tls is not None:  # a failed handshake inside pynetdicom leaks its socket and says less
            self._handshake()
        ae = AE(ae_title=self.calling_aet)
        for t in ("acse_timeout", "dimse_timeout", "network_timeout", "connection_timeout"):
            setattr(ae, t, self.timeout_s)
        ae.maximum_pdu_size = 0
        kwargs = {"tls_args": (self.tls, self.host)} if self.tls is not None else {}
        opened: list = []  # the association's socket, closed here if the association fails

        def keep_socket(event):
            sock = getattr(getattr(event.assoc.dul, "socket", None), "socket", None)
            if sock is not None:
                opened.append(sock)

        t0 = time.monotonic()
        assoc = ae.associate(self.host, self.port, contexts=contexts, ae_title=self.called_aet, ext_neg=ext_neg,
                             evt_handlers=[*(handlers or []), (evt.EVT_CONN_OPEN, keep_socket)], **kwargs)
        timed_out = time.monotonic() - t0 >= 0.9 * self.timeout_s  # pynetdicom aborts on its timeout too
        if not assoc.is_established:
            who = (f"calling AE title {self.calling_aet!r} from this host, or its AE title is not "
                   f"{self.called_aet!r}")
            if assoc.is_rejected:
                why = f"association rejected: the PACS does not accept {who}"
            elif timed_out:
                why = f"no association: the PACS did not answer within {self.timeout_s:g} s (timeout_s)"
            elif self.tls is None and self._speaks_tls():
                why = ("the PACS speaks DICOM TLS on this port: pass `tls` (an ssl.SSLContext that trusts its "
                       "certificate authority, with this client's certificate if it asks for one)")
            else:  # some PACS close the connection right after their rejection
                why = f"association aborted by the PACS (it may not accept {who})"
            for sock in opened:  # pynetdicom leaves a reset socket open (its shutdown raises first)
                sock.close()
            raise PacsError(self.server, why)
        return assoc

    def _handshake(self) -> None:
        """A TLS handshake with ``tls`` before the association: PacsError when the PACS's
        certificate is not trusted, it refuses this client's certificate, or the port does
        not speak TLS. (Inside pynetdicom such a failure leaks its socket and says less.)

        TLS 1.3 refuses a client certificate only after the client's side of the handshake
        is done, so the probe then sends an A-ABORT PDU, which a DICOM server answers by
        closing the connection (PS3.8 state machine: Sta2 + Evt16 -> AA-2). A clean TLS close
        is success; a connection dropped without one is probed again without sending
        anything, to read the server's alert (why it refused).
        """
        import ssl

        try:
            after = self._probe(send_abort=True)
            if after is not None and not isinstance(after, TimeoutError):
                after = self._probe(send_abort=False)
        except (ssl.SSLError, OSError) as exc:  # the handshake itself failed
            raise PacsError(self.server, self._tls_problem(exc)) from None
        if isinstance(after, ssl.SSLError) and not isinstance(after, ssl.SSLEOFError):
            raise PacsError(self.server, self._tls_problem(after))
        if after is not None and not isinstance(after, TimeoutError):
            raise PacsError(self.server, "TLS: the PACS dropped the connection right after the handshake (it may "
                                         "refuse this client's certificate: see `tls`)")

    def _probe(self, *, send_abort: bool):
        """Handshake, then (send an A-ABORT PDU and) read once; the read's exception or None."""
        import ssl

        abort = bytes([0x07, 0, 0, 0, 0, 4, 0, 0, 0, 0])  # A-ABORT PDU, source: service user
        with socket.create_connection((self.host, self.port), timeout=self.timeout_s) as raw, \
                self.tls.wrap_socket(raw, server_hostname=self.host) as tls:
            tls.settimeout(min(self.timeout_s, 2.0))
            try:
                if send_abort:
                    tls.sendall(abort)
                tls.recv(16)
            except (ssl.SSLError, OSError) as exc:
                return exc
        return None

    def _tls_problem(self, exc: BaseException) -> str:
        """Why the TLS probe of :meth:`_handshake` failed, in words."""
        import ssl

        if isinstance(exc, ssl.SSLCertVerificationError):
            return (f"TLS: the PACS's certificate is not trusted ({exc.verify_message}); check the certificate "
                    "authority (and host name) of `tls`")
        if isinstance(exc, ssl.SSLError) and not isinstance(exc, ssl.SSLEOFError):
            reason = str(exc.reason or exc)
            if "WRONG_VERSION_NUMBER" in reason:
                return f"TLS: the PACS does not speak TLS on this port ({reason}); leave out `tls` or use its TLS port"
            if any(k in reason for k in ("CERTIFICATE_REQUIRED", "UNKNOWN_CA", "BAD_CERTIFICATE",
                                         "HANDSHAKE_FAILURE", "CERTIFICATE_UNKNOWN", "ACCESS_DENIED")):
                return (f"TLS: the PACS refused this client's certificate ({reason}); `tls` must present a "
                        "certificate the PACS trusts (load_cert_chain)")
            return f"TLS handshake failed ({reason})"
        if isinstance(exc, TimeoutError):
            return f"TLS: no handshake within {self.timeout_s:g} s (timeout_s); does the PACS offer DICOM TLS on this port?"
        return "TLS: the PACS closed the connection during the handshake (does it offer DICOM TLS on this port?)"

    def _speaks_tls(self) -> bool:
        """After an aborted plain association: does the PACS answer a TLS handshake here?"""
        import ssl

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # only asks whether TLS answers; nothing is sent
        try:
            with socket.create_connection((self.host, self.port), timeout=min(self.timeout_s, 5.0)) as raw, \
                    ctx.wrap_socket(raw, server_hostname=self.host):
                return True
        except (ssl.SSLError, OSError):
            return False

    @staticmethod
    def _context(abstract, syntaxes=None):
        from pynetdicom import build_context

        return build_context(abstract, syntaxes) if syntaxes else build_context(abstract)

    # -- C-ECHO ---------------------------------------------------------------------------
    def echo(self) -> bool:
        """True when the PACS answers a C-ECHO (else PacsError)."""
        from pynetdicom.sop_class import Verification

        assoc = self._associate([self._context(Verification)])
        try:
            status = assoc.send_c_echo()
        finally:
            assoc.release()
        if not status or int(status.Status) != 0:
            raise PacsError(self.server, f"C-ECHO failed (status {getattr(status, 'Status', 'none')})")
        return True

    # -- C-FIND ---------------------------------------------------------------------------
    def search(self, level: str = "study", *, study_uid: str | None = None, series_uid: str | None = None,
               limit: int | None = None, **filters):
        """Search the PACS (C-FIND) at one level; the same arguments and columns as
        :meth:`medlab.pacs.DicomWebClient.search`."""
        level = c.check_level(level)
        filters = c.check_filters(filters)
        if level == "instance" and not (study_uid and series_uid):
            raise ValueError("`study_uid` and `series_uid` are both needed to search instances")
        keys = list(c.RETURN_KEYS[level]) + [k for k in filters if k not in c.RETURN_KEYS[level]]
        extra = {}
        if study_uid and level in ("series", "instance"):
            extra["StudyInstanceUID"] = c.check_uid("study_uid", study_uid)
        if series_uid and level == "instance":
            extra["SeriesInstanceUID"] = c.check_uid("series_uid", series_uid)
        rows = self._find(level, keys, {**filters, **extra})
        return c.rows_to_frame(rows[:limit] if limit else rows, level)

    def _find(self, level: str, keys, match: dict) -> list[dict]:
        import pydicom
        from pynetdicom.sop_class import (
            PatientRootQueryRetrieveInformationModelFind,
            StudyRootQueryRetrieveInformationModelFind,
        )

        model = PatientRootQueryRetrieveInformationModelFind if level == "patient" else StudyRootQueryRetrieveInformationModelFind
        ident = pydicom.Dataset()
        ident.QueryRetrieveLevel = _LEVEL[level]
        for k in keys:
            setattr(ident, k, "")
        for k, v in match.items():
            setattr(ident, k, v)
        assoc = self._associate([self._context(model)])
        rows = []
        try:
            for status, found in assoc.send_c_find(ident, model):
                if not status:
                    raise PacsError(self.server, "C-FIND: no answer (association aborted or timed out)")
                code = int(status.Status)
                if code in (0xFF00, 0xFF01) and found is not None:
                    rows.append(c.dataset_row(found, keys))
                elif code != 0:
                    raise PacsError(self.server, f"C-FIND at {level} level failed (status 0x{code:04X})")
        finally:
            assoc.release()
        return rows

    # -- C-GET ----------------------------------------------------------------------------
    def retrieve_series(self, study_uid: str, series_uid: str, folder, *, workers: int = 1,
                        progress: bool = True) -> Retrieval:
        """Retrieve one series (C-GET) into ``folder`` as ``<SOPInstanceUID>.dcm`` files.

        The same contract as :meth:`medlab.pacs.DicomWebClient.retrieve_series`: instances
        already present are skipped (the others are asked for by UID list), each file is
        written to a temporary name and renamed, and instances the PACS lists but does not
        send raise :class:`PacsError` naming them. ``workers`` associations run in parallel,
        each asking for its share of the instances.
        """

        study_uid, series_uid = c.check_uid("study_uid", study_uid), c.check_uid("series_uid", series_uid)
        workers = check_int("workers", workers, minimum=1)
        folder = c.prepare_folder(folder)
        result = Retrieval(folder)
        t0 = time.perf_counter()
        uids: list[str] = []
        for _ in range(3):  # a series that gains instances while we retrieve gets another pass
            listed = self._find("instance", ["SOPInstanceUID", "SOPClassUID"],
                                {"StudyInstanceUID": study_uid, "SeriesInstanceUID": series_uid})
            if not listed and not uids:
                raise PacsError(self.server, f"series {series_uid} of study {study_uid} has no instances on the PACS")
            seen = set(uids)
            new = [r["SOPInstanceUID"] for r in listed if r["SOPInstanceUID"] not in seen]
            todo = [u for u in new if not c.instance_path(folder, u).exists()]
            if not uids:
                result.skipped = len(new) - len(todo)
            if not todo:
                uids += new
                break
            whole = not uids and len(todo) == len(new) and workers == 1
            uids += new
            classes = sorted({r["SOPClassUID"] for r in listed if r.get("SOPClassUID")})
            self._transfer(study_uid, series_uid, None if whole else todo, classes, folder, workers, progress,
                           result, uids)
        result.seconds = time.perf_counter() - t0
        result.files = sorted(c.instance_path(folder, u) for u in uids if c.instance_path(folder, u).exists())
        missing = [u for u in uids if not c.instance_path(folder, u).exists()]
        if missing:
            raise PacsError(self.server, f"series {series_uid}: {len(missing)} listed instance(s) were not delivered "
                                         f"(first: {missing[0]}); rerun to retry",
                            retrieved=result.files, missing=missing)
        return result

    def _transfer(self, study_uid, series_uid, todo, classes, folder, workers, progress, result, uids) -> None:
        """C-GET (or C-MOVE) of the series (``todo`` None) or of the listed instances,
        ``workers`` associations."""
        bar = c.progress_bar(len(todo) if todo else len(uids), "C-MOVE" if self.move_port else "C-GET", progress)
        sink = _Sink(folder, result, bar)
        listener = self._listen(classes, sink) if self.move_port else None
        fetch = self._move if self.move_port else self._get
        try:
            shares = [None] if todo is None else [todo[i::workers] for i in range(workers) if todo[i::workers]]
            if len(shares) == 1:
                fetch(study_uid, series_uid, shares[0], classes, sink)
            else:
                with ThreadPoolExecutor(len(shares), thread_name_prefix="medlab-cget") as pool:
                    for f in [pool.submit(fetch, study_uid, series_uid, sh, classes, sink) for sh in shares]:
                        f.result()
            if sink.errors:
                raise PacsError(self.server, f"could not write {len(sink.errors)} received instance(s): {sink.errors[0]}")
        except PacsError as exc:
            done = sorted(c.instance_path(folder, u) for u in uids if c.instance_path(folder, u).exists())
            raise PacsError(exc.server, exc.reason, retrieved=done,
                            missing=[u for u in uids if not c.instance_path(folder, u).exists()]) from None
        finally:
            if listener is not None:
                listener.shutdown()
            bar.close()

    @staticmethod
    def _identifiers(study_uid, series_uid, sop_uids):
        import pydicom

        chunks = [None] if sop_uids is None else [sop_uids[i:i + _UIDS_PER_GET]
                                                  for i in range(0, len(sop_uids), _UIDS_PER_GET)]
        for chunk in chunks:
            ident = pydicom.Dataset()
            ident.QueryRetrieveLevel = "SERIES" if chunk is None else "IMAGE"
            ident.StudyInstanceUID = study_uid
            ident.SeriesInstanceUID = series_uid
            if chunk is not None:
                ident.SOPInstanceUID = chunk
            yield ident

    def _final_status(self, responses, what: str, series_uid: str) -> None:
        final = None
        for status, _ in responses:
            if not status:
                raise PacsError(self.server, f"{what}: no answer (association aborted or timed out)")
            final = int(status.Status)
        if final not in (0x0000, 0xB000):
            shown = "none" if final is None else f"0x{final:04X}"
            raise PacsError(self.server, f"{what} of series {series_uid} failed (status {shown})")

    def _get(self, study_uid, series_uid, sop_uids, classes, sink) -> None:
        from pynetdicom import build_role, evt
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet as model

        contexts = [self._context(model)] + [self._context(k, _syntaxes()) for k in classes]
        roles = [build_role(k, scp_role=True) for k in classes]
        assoc = self._associate(contexts, ext_neg=roles, handlers=[(evt.EVT_C_STORE, sink)])
        try:
            for ident in self._identifiers(study_uid, series_uid, sop_uids):
                self._final_status(assoc.send_c_get(ident, model), "C-GET", series_uid)
        finally:
            if assoc.is_established:
                assoc.release()

    def _listen(self, classes, sink):
        """The C-MOVE destination: a storage SCP on ``move_port`` that accepts only the PACS."""
        from pynetdicom import AE, evt

        ae = AE(ae_title=self.calling_aet)
        ae.require_calling_aet = [self.called_aet]
        for t in ("acse_timeout", "dimse_timeout", "network_timeout"):
            setattr(ae, t, self.timeout_s)
        for k in classes:
            ae.add_supported_context(k, _syntaxes())
        try:
            return ae.start_server((self.move_bind, self.move_port), block=False,
                                   evt_handlers=[(evt.EVT_C_STORE, sink)])
        except OSError as exc:
            raise PacsError(self.server, f"cannot listen on port {self.move_port} for C-MOVE: "
                                         f"{exc.strerror or exc}") from None

    def _move(self, study_uid, series_uid, sop_uids, classes, sink) -> None:
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove as model

        assoc = self._associate([self._context(model)])
        try:
            for ident in self._identifiers(study_uid, series_uid, sop_uids):
                self._final_status(assoc.send_c_move(ident, self.calling_aet, model), "C-MOVE", series_uid)
        finally:
            if assoc.is_established:
                assoc.release()

    def retrieve_image(self, study_uid: str, series_uid: str, *, folder=None, workers: int = 1,
                       progress: bool = True, **read_options):
        """Retrieve a series (C-GET) and read it with :func:`medlab.io.read` (see
        :meth:`medlab.pacs.DicomWebClient.retrieve_image`)."""
        from medlab.pacs._web import _retrieve_image

        return _retrieve_image(self, study_uid, series_uid, folder=folder, workers=workers,
                               progress=progress, read_options=read_options)

    # -- C-STORE --------------------------------------------------------------------------
    def store(self, files, *, progress: bool = True) -> list[str]:
        """Store DICOM files, a folder of them, or pydicom datasets (C-STORE); returns the
        SOPInstanceUIDs stored. Raises :class:`PacsError` naming the first refused instance."""
        import io

        import pydicom

        from medlab.pacs._web import _store_items

        items = _store_items(files)
        datasets = [pydicom.dcmread(io.BytesIO(data)) for _, data in items]
        pairs = sorted({(str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)) for ds in datasets})
        if len(pairs) > 128:
            raise ValueError(f"`files` need {len(pairs)} presentation contexts (SOP class x transfer syntax); at most 128")
        assoc = self._associate([self._context(k, [ts]) for k, ts in pairs])
        stored = []
        bar = c.progress_bar(len(datasets), "C-STORE", progress)
        try:
            for ds in datasets:
                status = assoc.send_c_store(ds)
                code = int(status.Status) if status else None
                if code is None or code not in (0x0000, 0xB000, 0xB007, 0xB006):
                    shown = "no answer" if code is None else f"status 0x{code:04X}"
                    raise PacsError(self.server, f"C-STORE of instance {ds.SOPInstanceUID} refused ({shown}); "
                                                 f"{len(stored)} stored")
                stored.append(str(ds.SOPInstanceUID))
                bar.update(1)
        finally:
            bar.close()
            if assoc.is_established:
                assoc.release()
        return stored
