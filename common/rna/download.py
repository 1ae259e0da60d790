"""Download the public RNAcompete files (Ray et al., Nature 2013) in the course's format.

    python -m common.rna.download [--out data/rnacompete] [--base-url URL]

norm_data.txt.gz is streamed, gunzipped on the fly into norm_data.txt; the master file is saved as
metadata.xlsx. Each file goes to a temporary file that is renamed only when complete and checked;
manifest.json records the URLs, sizes and MD5s. A rerun that finds the files of its manifest complete
downloads nothing.
"""
import argparse
import hashlib
import os
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path

from tqdm import tqdm

from common.rna.format import read_header, read_metadata
from common.runfiles.files import (
    UserError,
    exit_on_user_error,
    md5_file,
    read_json,
    timestamp,
    write_json,
    write_with,
)

BASE_URL = "http://hugheslab.ccbr.utoronto.ca/supplementary-data/RNAcompete_eukarya/"
URL_VAR = "RNACOMPETE_URL"
RBFOX1 = "RNCMPT00168"
# remote name, local name, gunzip
FILES = (("norm_data.txt.gz", "norm_data.txt", True),
         ("SupplementaryData1_RNAcompete_master_file.xlsx", "metadata.xlsx", False))
CHUNK = 1 << 20


def base_url(explicit=None):
    """--base-url, else $RNACOMPETE_URL, else the Hughes lab folder; always ending in '/'."""
    url = explicit or os.environ.get(URL_VAR) or BASE_URL
    return url if url.endswith("/") else url + "/"


def _manual(url, out):
    return (f"without internet access, download {url} on another machine and put norm_data.txt (gunzipped) "
            f"and metadata.xlsx in {out}, or set ${URL_VAR} to a mirror of {BASE_URL}")


def _gunzip_chunks(chunks):
    """Decompress a stream of gzip bytes chunk by chunk (several gzip members in a row are allowed)."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    for chunk in chunks:
        while chunk:
            yield d.decompress(chunk)
            chunk = d.unused_data
            if chunk:
                d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    if not d.eof:
        raise zlib.error("the gzip stream ends early (truncated download)")


def fetch(url, path, gunzip, out_dir, timeout=60, progress=None):
    """Stream url into path (gunzipped if asked) atomically.
    Returns {url, file, bytes_downloaded, size, md5}."""
    try:
        response = urllib.request.urlopen(url, timeout=timeout)
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        raise UserError(f"cannot download {url} ({reason}); {_manual(url, out_dir)}") from None
    total = int(response.headers.get("Content-Length") or 0) or None
    info = {"url": url, "file": path.name, "bytes_downloaded": 0}

    def write(f):
        md5 = hashlib.md5()
        with response, tqdm(total=total, unit="B", unit_scale=True, desc=path.name,
                                     disable=None if progress is None else not progress, leave=False) as bar:
            def raw():
                while block := response.read(CHUNK):
                    info["bytes_downloaded"] += len(block)
                    bar.update(len(block))
                    yield block
            try:
                for block in (_gunzip_chunks(raw()) if gunzip else raw()):
                    md5.update(block)
                    f.write(block)
            except (OSError, zlib.error) as e:
                raise UserError(f"download of {url} failed ({e}); run the command again; "
                                f"{_manual(url, out_dir)}") from None
        if total and info["bytes_downloaded"] != total:
            raise UserError(f"download of {url} stopped at {info['bytes_downloaded']:,} of {total:,} bytes; "
                            "run the command again")
        info["md5"] = md5.hexdigest()
        info["size"] = f.tell()

    write_with(path, write)
    return info


def _complete(out, manifest):
    """True when every file the manifest lists is there with its size and MD5."""
    try:
        return all((out / e["file"]).is_file() and (out / e["file"]).stat().st_size == e["size"]
                   and md5_file(out / e["file"]) == e["md5"] for e in manifest["files"])
    except (KeyError, TypeError):
        return False


def check_files(out):
    """The downloaded files are what the loader needs: norm_data.txt's header and the metadata sheet."""
    header = read_header(out / "norm_data.txt")
    if RBFOX1 not in header:
        raise UserError(f"{out / 'norm_data.txt'}: no column {RBFOX1} (RBFOX1); "
                        "this is not the RNAcompete norm_data.txt")
    read_metadata(out / "metadata.xlsx")
    return len(header)


def download(out="data/rnacompete", url=None, timeout=60, progress=None):
    """Fetch both files into out/ unless a complete download is already there. Returns the manifest (with
    "skipped": True when nothing was fetched). progress: None = a bar only on a terminal, False = always."""
    out, base = Path(out), base_url(url)
    manifest_path = out / "manifest.json"
    if manifest_path.is_file() and _complete(out, read_json(manifest_path)):
        return {**read_json(manifest_path), "skipped": True}
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    files = [fetch(base + remote, out / local, gunzip, out, timeout, progress)
             for remote, local, gunzip in FILES]
    columns = check_files(out)
    manifest = {"base_url": base, "files": files, "columns": columns, "downloaded": timestamp(),
                "seconds": round(time.time() - started, 1),
                "source": "Ray et al., Nature 2013 (RNAcompete), supplementary data"}
    write_json(manifest_path, manifest)
    return {**manifest, "skipped": False}


def main(argv=None):
    d = p = argparse.ArgumentParser(prog="python -m common.rna.download",
                                    description="fetch the public norm_data.txt and master file "
                                                "(Ray et al. 2013) into --out")
    d.add_argument("--out", default="data/rnacompete",
                   help="folder for norm_data.txt, metadata.xlsx, manifest.json")
    d.add_argument("--base-url", default=None, help="folder URL holding norm_data.txt.gz and the master file "
                   "(default $RNACOMPETE_URL, else the Hughes lab supplementary-data folder)")
    d.add_argument("--timeout", type=float, default=60, help="seconds to wait for the server")
    args = p.parse_args(argv)
    m = download(args.out, args.base_url, args.timeout)
    if m["skipped"]:
        print(f"{args.out}: complete download already there (manifest.json); nothing fetched")
        return
    for f in m["files"]:
        print(f"{Path(args.out) / f['file']}: {f['size']:,} bytes, md5 {f['md5']} (from {f['url']})")
    print(f"{m['columns']} columns in norm_data.txt; {m['seconds']} s. "
          f"Next: python q2_1_cnn_lstm.py --data-dir {args.out}")


if __name__ == "__main__":
    exit_on_user_error(main)
