"""Loaders: digits, Fashion-MNIST/MNIST (npz and IDX), lookup, download, CSV, npz, from_arrays."""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.preprocessing import StandardScaler

import steadygrad.data.datasets as datasets_mod
import steadygrad.data.sources as sources
from steadygrad.data.arrays import from_arrays
from steadygrad.data.datasets import (
    DATASETS,
    FASHION_MNIST_CLASSES,
    csv,
    digits,
    fashion_mnist,
    load,
    mnist,
    npz,
)
from steadygrad.data.idx import read_idx, write_idx
from steadygrad.data.sources import ImageSource, download, file_digest
from steadygrad.errors import ConfigError, DataError, UnknownNameError

# --------------------------------------------------------------------------------------- digits


def test_digits_offline_shapes_and_split_sizes() -> None:
    ds = digits()
    assert (len(ds.x_train), len(ds.x_val), len(ds.x_test)) == (1149, 288, 360)
    assert ds.x_test is not None and ds.y_test is not None
    assert ds.input_shape == (64,) and ds.num_features == 64
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert ds.task == "multiclass" and ds.num_classes == 10
    assert ds.class_names == tuple(str(i) for i in range(10))
    for y in (ds.y_train, ds.y_val, ds.y_test):
        assert set(y.tolist()) == set(range(10))


def test_digits_splits_partition_the_embedded_data() -> None:
    ds = digits(standardize=False, scale=False)
    assert ds.x_test is not None and ds.y_test is not None
    got = torch.cat([ds.x_train, ds.x_val, ds.x_test]).numpy()
    labels = torch.cat([ds.y_train, ds.y_val, ds.y_test]).numpy()
    bunch = load_digits()
    rows = np.hstack([got, labels[:, None]])
    ref = np.hstack([bunch.data, bunch.target[:, None]])
    # same multiset of (pixels, label) rows: nothing lost, nothing duplicated
    np.testing.assert_array_equal(rows[np.lexsort(rows.T)], ref[np.lexsort(ref.T)])
    assert ds.x_train.max().item() == 16.0


def test_digits_standardization_matches_sklearn_standard_scaler() -> None:
    raw = digits(standardize=False)  # same seed -> same split, pixels scaled to [0, 1]
    ds = digits()
    assert raw.x_test is not None and ds.x_test is not None
    scaler = StandardScaler().fit(raw.x_train.double().numpy())
    for mine, theirs in ((ds.x_train, raw.x_train), (ds.x_val, raw.x_val),
                         (ds.x_test, raw.x_test)):
        expected = scaler.transform(theirs.double().numpy())
        np.testing.assert_allclose(mine.numpy(), expected, atol=1e-5)
    assert ds.mean is not None and ds.std is not None
    np.testing.assert_allclose(ds.mean.numpy(), scaler.mean_, atol=1e-6)
    np.testing.assert_allclose(ds.std.numpy(), scaler.scale_, rtol=1e-6)
    # train features: mean 0 and std 1 where they vary; constant pixels stay exactly 0
    varying = raw.x_train.std(0) > 0
    assert (~varying).any()
    np.testing.assert_allclose(ds.x_train.mean(0).numpy(), 0.0, atol=1e-5)
    np.testing.assert_allclose(ds.x_train[:, varying].std(0, unbiased=False).numpy(), 1.0,
                               atol=1e-4)
    assert torch.all(ds.x_train[:, ~varying] == 0)
    # validation statistics are NOT refitted: their mean is not exactly 0
    assert ds.x_val.mean(0).abs().max() > 1e-3


def test_digits_split_is_seeded_and_stratified() -> None:
    a, b, c = digits(seed=1), digits(seed=1), digits(seed=2)
    assert torch.equal(a.x_val, b.x_val) and not torch.equal(a.x_val, c.x_val)
    counts = np.bincount(load_digits().target)
    expected = counts * (288 / 1437) * (1437 / 1797)  # share of each class held out for val
    got = np.bincount(a.y_val.numpy(), minlength=10)
    assert np.all(np.abs(got - expected) <= 2), (got, expected)


def test_n_train_fits_the_standardization_on_the_kept_rows_only() -> None:
    small = digits(n_train=100)
    raw = digits(n_train=100, standardize=False)
    assert len(small.x_train) == 100 and len(small.x_val) == 288
    assert small.mean is not None
    np.testing.assert_allclose(small.mean.numpy(), raw.x_train.mean(0).numpy(), atol=1e-6)


def test_global_standardization_uses_one_scalar() -> None:
    ds = digits(standardize="global")
    assert ds.mean is not None and ds.mean.shape == ()
    assert abs(ds.x_train.mean().item()) < 1e-5
    assert ds.x_train.std(unbiased=False).item() == pytest.approx(1.0, abs=1e-4)


def test_float64_dtype_is_honoured() -> None:
    ds = digits(dtype=torch.float64, n_train=10)
    assert ds.x_train.dtype == torch.float64 and ds.y_train.dtype == torch.int64


# ------------------------------------------------------------------------- Dataset helpers


def test_subset_to_and_summary() -> None:
    ds = digits()
    small = ds.subset(n_train=50, n_val=20, n_test=10)
    assert torch.equal(small.x_train, ds.x_train[:50]) and len(small.y_val) == 20
    assert small.x_test is not None and len(small.x_test) == 10
    assert small.mean is ds.mean
    with pytest.raises(ConfigError, match="n_train: got 5000"):
        ds.subset(n_train=5000)
    moved = ds.to("cpu")
    assert moved.x_train.device.type == "cpu" and moved is not ds
    text = ds.summary()
    assert "digits: multiclass, 10 classes" in text and "train 1149 | val 288 | test 360" in text
    with pytest.raises(AttributeError):
        ds.name = "other"  # type: ignore[misc]


# ------------------------------------------------------------------- Fashion-MNIST (real file)


@functools.cache
def _fashion(path: str) -> tuple[object, dict[str, np.ndarray]]:
    ds = fashion_mnist()  # found through $STEADYGRAD_DATA, set by tests/conftest.py
    with np.load(path) as f:
        raw = {k: f[k] for k in f.files}
    return ds, raw


@pytest.fixture
def fashion(fashion_mnist_path: Path) -> tuple[object, dict[str, np.ndarray]]:
    """Loaded once per session (about 1 s), reused by every Fashion-MNIST test."""
    return _fashion(str(fashion_mnist_path))


def test_fashion_mnist_real_file_shapes_and_labels(fashion: tuple) -> None:
    ds, _ = fashion
    assert (len(ds.x_train), len(ds.x_val), len(ds.x_test)) == (55000, 5000, 10000)
    assert ds.input_shape == (28, 28) and ds.x_train.dtype == torch.float32
    for y in (ds.y_train, ds.y_val, ds.y_test):
        assert y.dtype == torch.int64 and y.min().item() == 0 and y.max().item() == 9
    assert ds.class_names == FASHION_MNIST_CLASSES and ds.class_names[0] == "T-shirt/top"
    assert torch.bincount(ds.y_test).tolist() == [1000] * 10


def test_fashion_mnist_uses_the_books_tail_split_and_train_statistics(fashion: tuple) -> None:
    ds, raw = fashion
    # float64 oracle on 64 random pixels (all 784 would cost seconds for no extra coverage)
    cols = np.random.default_rng(0).choice(784, 64, replace=False)
    flat = {k: raw[k].reshape(len(raw[k]), -1)[:, cols] for k in ("x_train", "x_test")}
    x_train = flat["x_train"][:-5000] / 255.0
    mean, std = x_train.mean(0), x_train.std(0)
    std[std < 1e-7] = 1.0
    np.testing.assert_array_equal(ds.y_val.numpy(), raw["y_train"][-5000:])
    np.testing.assert_array_equal(ds.y_train.numpy(), raw["y_train"][:-5000])
    np.testing.assert_allclose(ds.mean.reshape(-1)[cols].numpy(), mean, atol=1e-6)
    np.testing.assert_allclose(ds.std.reshape(-1)[cols].numpy(), std, rtol=1e-5)
    expected_val = (flat["x_train"][-5000:] / 255.0 - mean) / std
    np.testing.assert_allclose(ds.x_val.reshape(5000, -1)[:, cols].numpy(), expected_val,
                               atol=1e-4)
    expected_test = (flat["x_test"] / 255.0 - mean) / std
    np.testing.assert_allclose(ds.x_test.reshape(10000, -1)[:, cols].numpy(), expected_test,
                               atol=1e-4)
    # the training split is standardized exactly; the validation split only approximately
    assert ds.x_train.mean().abs().item() < 1e-5
    assert ds.x_val.mean().abs().item() > 1e-4


def test_fashion_mnist_explicit_root_and_registry_alias(fashion_mnist_path: Path) -> None:
    ds = load("fashion-mnist", root=fashion_mnist_path, n_train=200, standardize=False,
              val_size=1000)
    assert (len(ds.x_train), len(ds.x_val), len(ds.x_test)) == (200, 1000, 10000)
    assert ds.x_train.min().item() >= 0.0 and ds.x_train.max().item() <= 1.0
    assert DATASETS.canonical("fmnist") == "fashion_mnist"


# ------------------------------------------------------------------------- IDX files


def _idx_bytes(array: np.ndarray, code: int) -> bytes:
    """IDX bytes built by hand from the format spec (independent of write_idx)."""
    header = struct.pack(">BBBB", 0, 0, code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize(
    ("dtype", "code"),
    [(np.uint8, 0x08), (np.int8, 0x09), (np.int16, 0x0B), (np.int32, 0x0C),
     (np.float32, 0x0D), (np.float64, 0x0E)],
)
def test_read_idx_parses_the_spec(tmp_path: Path, dtype: type, code: int, compress: bool) -> None:
    array = (np.arange(24) - 5).astype(dtype).reshape(2, 3, 4)
    data = _idx_bytes(array, code)
    path = tmp_path / "a-idx3"
    path.write_bytes(gzip.compress(data) if compress else data)
    got = read_idx(path)
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    np.testing.assert_array_equal(got, array)
    out = tmp_path / ("b-idx3.gz" if compress else "b-idx3")
    write_idx(out, array)
    raw_out = out.read_bytes()
    assert (gzip.decompress(raw_out) if compress else raw_out) == data


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        (_idx_bytes(np.zeros((2, 2), np.uint8), 0x08)[:-1], "truncated or corrupt"),
        (_idx_bytes(np.zeros((2, 2), np.uint8), 0x08) + b"\x00", "got 17 bytes; expected 16"),
        (b"\x00\x00\x07\x01\x00\x00\x00\x01\x00", "type code 0x07"),
        (b"PK\x03\x04", "magic bytes"),
        (b"\x1f\x8b\x08\x00garbage", "corrupt gzip"),
    ],
    ids=["truncated", "padded", "type-code", "magic", "gzip"],
)
def test_read_idx_rejects_bad_files(tmp_path: Path, payload: bytes, needle: str) -> None:
    path = tmp_path / "bad-idx"
    path.write_bytes(payload)
    with pytest.raises(DataError, match=needle) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def _write_mnist_folder(folder: Path, n_train: int = 30, n_test: int = 10, gz: bool = True,
                        seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": (np.arange(n_train) % 10).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": (np.arange(n_test) % 10).astype(np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for key, (name, _) in sources.MNIST.files.items():
        write_idx(folder / (name if gz else name.removesuffix(".gz")), arrays[key])
    return arrays


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_from_idx_folder(tmp_path: Path, gz: bool) -> None:
    arrays = _write_mnist_folder(tmp_path / "mnist", gz=gz)
    ds = mnist(root=tmp_path, val_size=6, standardize=False)  # finds root/mnist/
    assert (len(ds.x_train), len(ds.x_val), len(ds.x_test)) == (24, 6, 10)
    np.testing.assert_allclose(ds.x_val.numpy(), arrays["x_train"][-6:] / 255.0, atol=1e-7)
    np.testing.assert_array_equal(ds.y_test.numpy(), arrays["y_test"])


def test_idx_label_out_of_range_is_reported(tmp_path: Path) -> None:
    arrays = _write_mnist_folder(tmp_path)
    arrays["y_train"][7] = 11
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", arrays["y_train"])
    with pytest.raises(DataError, match=r"y_train: 1 label out of range; first at row 7 \(11\)"):
        mnist(root=tmp_path)


# ---------------------------------------------------------------- lookup and not-found


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No $STEADYGRAD_DATA, an empty cache under tmp_path, and any network use fails."""
    monkeypatch.delenv("STEADYGRAD_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))

    def no_network(url: str) -> None:
        raise AssertionError(f"network used: {url}")

    monkeypatch.setattr(sources, "_urlopen", no_network)
    return tmp_path


def test_not_found_says_where_it_looked_and_how_to_fix(isolated: Path) -> None:
    with pytest.raises(DataError) as info:
        fashion_mnist(root=isolated / "nowhere")
    message = str(info.value)
    for needle in ("fashion-mnist: not found", f"root={isolated / 'nowhere'}",
                   "$STEADYGRAD_DATA (not set)", f"cache {isolated / 'xdg' / 'steadygrad'}",
                   "fashion-mnist.npz", "set $STEADYGRAD_DATA", "pass root=",
                   "download=True"):
        assert needle in message, needle


@pytest.mark.parametrize("layout", ["npz", "fashion-mnist", "fashion_mnist"])
def test_lookup_in_steadygrad_data(isolated: Path, monkeypatch: pytest.MonkeyPatch,
                                   layout: str) -> None:
    data = isolated / "data"
    if layout == "npz":
        data.mkdir()
        arrays = _write_mnist_folder(isolated / "scratch")
        np.savez(data / "fashion-mnist.npz", **arrays)
    else:
        arrays = _write_mnist_folder(data / layout)
    monkeypatch.setenv("STEADYGRAD_DATA", str(data))
    ds = fashion_mnist(val_size=5, standardize=False)
    np.testing.assert_array_equal(ds.y_train.numpy(), arrays["y_train"][:-5])


def test_lookup_in_xdg_cache(isolated: Path) -> None:
    arrays = _write_mnist_folder(isolated / "xdg" / "steadygrad" / "mnist", seed=4)
    ds = mnist(val_size=3, standardize=False)
    np.testing.assert_allclose(ds.x_test.numpy(), arrays["x_test"] / 255.0, atol=1e-7)


def test_root_beats_environment(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_mnist_folder(isolated / "env" / "mnist", seed=1)
    mine = _write_mnist_folder(isolated / "mine", seed=2)
    monkeypatch.setenv("STEADYGRAD_DATA", str(isolated / "env"))
    ds = mnist(root=isolated / "mine", val_size=3, standardize=False)
    np.testing.assert_allclose(ds.x_test.numpy(), mine["x_test"] / 255.0, atol=1e-7)


def test_npz_missing_image_keys(isolated: Path) -> None:
    path = isolated / "fashion-mnist.npz"
    np.savez(path, x_train=np.zeros((3, 28, 28), np.uint8), y_train=np.zeros(3, np.uint8))
    with pytest.raises(DataError, match="missing arrays x_test, y_test"):
        fashion_mnist(root=path)


# --------------------------------------------------------------------------- downloads


def _mirror(folder: Path) -> tuple[dict[str, np.ndarray], dict[str, tuple[str, str]]]:
    arrays = _write_mnist_folder(folder, seed=7)
    files = {k: (name, file_digest(folder / name, "md5"))
             for k, (name, _) in sources.FASHION_MNIST.files.items()}
    return arrays, files


def _read_file_url(url: str) -> io.BytesIO:
    """A fetch for file:// URLs (stands in for urllib in the download tests)."""
    return io.BytesIO(Path(url.removeprefix("file://")).read_bytes())


def test_download_true_fetches_verifies_and_caches(isolated: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    arrays, files = _mirror(isolated / "mirror")
    fake = ImageSource("fashion-mnist", ("fashion_mnist",), files, "md5",
                       ("file:///nonexistent/", (isolated / "mirror").as_uri() + "/"))
    monkeypatch.setattr(datasets_mod, "FASHION_MNIST", fake)
    monkeypatch.setattr(sources, "_urlopen", _read_file_url)
    with pytest.raises(DataError, match="not found"):
        fashion_mnist()  # never downloads unless asked
    ds = fashion_mnist(download=True, val_size=5, standardize=False)
    np.testing.assert_array_equal(ds.y_test.numpy(), arrays["y_test"])
    cached = isolated / "xdg" / "steadygrad" / "fashion-mnist"
    assert sorted(p.name for p in cached.iterdir()) == sorted(n for n, _ in files.values())
    # a second load finds the cache, without the network
    monkeypatch.setattr(sources, "_urlopen", lambda url: pytest.fail(f"downloaded {url}"))
    assert torch.equal(fashion_mnist(val_size=5, standardize=False).x_train, ds.x_train)


def test_tampered_download_is_rejected_and_leaves_nothing(isolated: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    _, files = _mirror(isolated / "mirror")
    (isolated / "mirror" / files["y_test"][0]).write_bytes(b"tampered")
    fake = ImageSource("fashion-mnist", (), files, "md5", ((isolated / "mirror").as_uri() + "/",))
    monkeypatch.setattr(datasets_mod, "FASHION_MNIST", fake)
    monkeypatch.setattr(sources, "_urlopen", _read_file_url)
    with pytest.raises(DataError, match="corrupt or was tampered with"):
        fashion_mnist(download=True)
    cached = isolated / "xdg" / "steadygrad" / "fashion-mnist"
    names = sorted(p.name for p in cached.iterdir())
    assert files["y_test"][0] not in names and not [n for n in names if n.endswith(".part")]


def test_download_with_sha256_and_fake_fetch(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    payload = b"steadygrad" * 1000
    monkeypatch.setattr(sources, "_urlopen", lambda url: io.BytesIO(payload))
    good = hashlib.sha256(payload).hexdigest()
    out = download("https://example.invalid/f.bin", tmp_path / "c" / "f.bin", checksum=good)
    assert out.read_bytes() == payload
    bad = hashlib.sha256(b"other").hexdigest()
    with pytest.raises(DataError, match="got sha256"):
        download("https://example.invalid/g.bin", tmp_path / "c" / "g.bin", checksum=bad)
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["f.bin"]
    with pytest.raises(DataError, match="http"):
        download("ftp://example.invalid/x", tmp_path / "x", checksum=good)


# --------------------------------------------------------------------------- CSV and npz


def test_csv_header_target_name_and_class_names(tmp_path: Path) -> None:
    path = tmp_path / "iris.csv"
    rows = [f"{i * 0.1:.1f},{i % 5},{['setosa', 'virginica', 'versicolor'][i % 3]}"
            for i in range(30)]
    path.write_text("sepal,petal,species\n" + "\n".join(rows) + "\n")
    ds = csv(path, target="species", standardize=False, val_size=6, seed=None)
    assert ds.task == "multiclass" and ds.class_names == ("setosa", "versicolor", "virginica")
    assert ds.input_shape == (2,) and ds.name == "iris"
    assert ds.x_val[:, 1].tolist() == [float(i % 5) for i in range(24, 30)]
    species = [["setosa", "virginica", "versicolor"][i % 3] for i in range(24, 30)]
    assert [ds.class_names[i] for i in ds.y_val.tolist()] == species


def test_csv_without_header_target_index_and_binary(tmp_path: Path) -> None:
    path = tmp_path / "b.csv"
    path.write_text("".join(f"{i % 2},{i},{i * 2}\n" for i in range(20)))
    ds = csv(path, target=0, val_size=4, seed=None, standardize=False)
    assert ds.task == "binary" and tuple(ds.y_train.shape) == (16, 1)
    assert ds.y_train.dtype == torch.float32
    assert ds.x_train[:3].tolist() == [[0.0, 0.0], [1.0, 2.0], [2.0, 4.0]]
    with pytest.raises(ConfigError, match="this file has no header"):
        csv(path, target="label")


def test_csv_unknown_target_suggests_a_column(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("size,price\n1,2.5\n2,3.5\n")
    with pytest.raises(ConfigError, match="did you mean 'price'"):
        csv(path, target="prise")


def test_npz_loader_with_explicit_splits_and_class_names(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "toy.npz"
    np.savez(path, x_train=rng.normal(size=(20, 3)), y_train=np.arange(20) % 3,
             x_val=rng.normal(size=(5, 3)), y_val=np.arange(5) % 3,
             class_names=np.array(["a", "b", "c"]))
    ds = npz(path)
    assert (len(ds.x_train), len(ds.x_val), ds.x_test) == (20, 5, None)
    assert ds.class_names == ("a", "b", "c")
    with pytest.raises(ConfigError, match="val_size"):
        npz(path, val_size=0.1)


# ------------------------------------------------------------------------- from_arrays


@pytest.mark.parametrize(
    ("y", "kwargs", "task", "num_classes", "y_shape", "y_dtype"),
    [
        (np.arange(20) % 2 == 0, {}, "binary", 2, (16, 1), torch.float32),
        (np.arange(20) % 2, {}, "binary", 2, (16, 1), torch.float32),
        (np.arange(20) % 2, {"task": "multiclass"}, "multiclass", 2, (16,), torch.int64),
        (np.arange(20) % 4, {}, "multiclass", 4, (16,), torch.int64),
        (np.arange(20) % 4, {"num_classes": 6}, "multiclass", 6, (16,), torch.int64),
        (np.arange(20) * 0.5, {}, "regression", None, (16, 1), torch.float32),
        (np.ones((20, 3)), {}, "regression", None, (16, 3), torch.float32),
        (torch.arange(20) % 3, {}, "multiclass", 3, (16,), torch.int64),
    ],
)
def test_from_arrays_task_inference(y: object, kwargs: dict, task: str,
                                    num_classes: int | None, y_shape: tuple,
                                    y_dtype: torch.dtype) -> None:
    ds = from_arrays(np.arange(40.0).reshape(20, 2), y, **kwargs)
    assert (ds.task, ds.num_classes) == (task, num_classes)
    assert tuple(ds.y_train.shape) == y_shape and ds.y_train.dtype == y_dtype


def test_from_arrays_num_classes_counts_every_split() -> None:
    ds = from_arrays(np.zeros((10, 2)), np.arange(10) % 3, x_test=np.zeros((2, 2)),
                     y_test=np.array([4, 0]), standardize=False)
    assert ds.num_classes == 5


def test_from_arrays_tail_split_and_callers_arrays_untouched() -> None:
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    x_test = x.copy()
    before = x_test.copy()
    ds = from_arrays(x, np.arange(10) % 2, x_test=x_test, y_test=np.arange(10) % 2,
                     val_size=0.3, seed=None, scale=2.0)
    np.testing.assert_array_equal(x_test, before)
    assert ds.mean is not None
    np.testing.assert_allclose(ds.mean.numpy(), x[:7].mean(0) / 2.0)
    raw_val = ds.x_val * ds.std + ds.mean
    np.testing.assert_allclose(raw_val.numpy(), x[7:] / 2.0, atol=1e-5)


def test_load_dispatch_and_argument_errors(tmp_path: Path) -> None:
    assert set(DATASETS.names()) == {
        "adding", "csv", "digits", "fashion_mnist", "first_token", "mnist", "npz"
    }
    assert load("digits", n_train=10).num_classes == 10
    with pytest.raises(UnknownNameError, match="did you mean 'mnist'"):
        load("mnsit")
    with pytest.raises(ConfigError, match=r"csv\.path: got None"):
        load("csv")
    with pytest.raises(ConfigError, match="did you mean 'val_size'"):
        load("digits", val_sise=0.1)
