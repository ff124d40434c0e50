//! Data sets and their split over devices (SPEC section 7).
//!
//! Images are kept as bytes (`[N, C, H, W]`, 0..=255) and normalized per
//! channel when a batch is made, so CIFAR-10 costs 150 MiB, not 600.
//! Fashion-MNIST is read from the IDX gzip files of Debian's
//! `dataset-fashion-mnist`; CIFAR-10/100 from their binary distributions;
//! a synthetic set (class prototypes plus noise) serves the tests.

use crate::error::{Error, Result};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::Rng;
use rand::seq::SliceRandom;
use rand_distr::{Distribution, Gamma};
use rand_pcg::Pcg64;

use std::io::Read;
use std::path::Path;

pub use crate::config::DatasetKind;
pub use crate::config::inputs::{FASHION_MNIST_DIR, FASHION_MNIST_SUBSET_DIR, fashion_mnist_default_dir};

/// A labelled image set.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// `[N, C, H, W]` pixels, 0..=255.
    pub pixels: Vec<u8>,
    pub labels: Vec<u16>,
    pub channels: usize,
    /// Height = width [px].
    pub size: usize,
    pub classes: usize,
    /// Per-channel mean and standard deviation of the [0, 1] pixels.
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    fn image_len(&self) -> usize {
        self.channels * self.size * self.size
    }

    /// The first `n` samples (all when `n` is 0 or larger than the set).
    pub fn truncated(mut self, n: usize) -> Dataset {
        if n > 0 && n < self.len() {
            self.pixels.truncate(n * self.image_len());
            self.labels.truncate(n);
        }
        self
    }

    /// The rotation pretext task (`training.task = "rotation"`): each
    /// image turned counter-clockwise by k x 90 degrees, k drawn per image
    /// from `seed` (stream `rotation`, index `stream`), and labelled k; 4
    /// classes. The per-channel statistics stay (a turn moves pixels, it
    /// does not change them).
    pub fn rotated(&self, seed: u64, stream: u64) -> Dataset {
        let mut rng = crate::sim::rng::stream(seed, "rotation", stream);
        let (n, c) = (self.size, self.channels);
        let mut pixels = vec![0u8; self.pixels.len()];
        let mut labels = Vec::with_capacity(self.len());
        for (img, out) in self.pixels.chunks_exact(self.image_len()).zip(pixels.chunks_exact_mut(self.image_len())) {
            let k: u16 = rng.random_range(0..4);
            labels.push(k);
            for ch in 0..c {
                let src = &img[ch * n * n..(ch + 1) * n * n];
                let dst = &mut out[ch * n * n..(ch + 1) * n * n];
                for i in 0..n {
                    for j in 0..n {
                        let (y, x) = match k {
                            0 => (i, j),
                            1 => (j, n - 1 - i),
                            2 => (n - 1 - i, n - 1 - j),
                            _ => (n - 1 - j, i),
                        };
                        dst[i * n + j] = src[y * n + x];
                    }
                }
            }
        }
        Dataset { pixels, labels, classes: 4, ..self.clone() }
    }

    /// The samples at `indices`, in that order.
    pub fn subset(&self, indices: &[u32]) -> Dataset {
        let il = self.image_len();
        let mut pixels = Vec::with_capacity(indices.len() * il);
        for &i in indices {
            pixels.extend_from_slice(&self.pixels[i as usize * il..(i as usize + 1) * il]);
        }
        Dataset {
            pixels,
            labels: indices.iter().map(|&i| self.labels[i as usize]).collect(),
            mean: self.mean.clone(),
            std: self.std.clone(),
            ..*self
        }
    }

    /// The public share and the private rest of the set: a seeded
    /// permutation's first round(share x N) samples, and the others, each
    /// in index order (disjoint; the same split for the same seed and share).
    pub fn split_public(&self, share: f64, seed: u64) -> (Vec<u32>, Vec<u32>) {
        use rand::seq::SliceRandom;
        let mut all: Vec<u32> = (0..self.len() as u32).collect();
        all.shuffle(&mut crate::sim::rng::stream(seed, "public", 0));
        let k = (share * self.len() as f64).round() as usize;
        let (mut public, mut private) = (all[..k].to_vec(), all[k..].to_vec());
        public.sort_unstable();
        private.sort_unstable();
        (public, private)
    }

    /// Normalized images `[B, C, H, W]` and labels `[B]` of `indices`.
    pub fn batch(&self, indices: &[u32], device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
        let il = self.image_len();
        let plane = self.size * self.size;
        let mut x = Vec::with_capacity(indices.len() * il);
        for &i in indices {
            let img = &self.pixels[i as usize * il..(i as usize + 1) * il];
            for (c, chan) in img.chunks_exact(plane).enumerate() {
                let (m, s) = (self.mean[c], 1.0 / self.std[c]);
                x.extend(chan.iter().map(|&p| (p as f32 / 255.0 - m) * s));
            }
        }
        let y: Vec<i64> = indices.iter().map(|&i| self.labels[i as usize] as i64).collect();
        let b = indices.len();
        (
            Tensor::from_data(TensorData::new(x, [b, self.channels, self.size, self.size]), device),
            Tensor::from_data(TensorData::new(y, [b]), device),
        )
    }

    /// A batch shaped for a model taking `channels` x `size` x `size`
    /// images: normalized with the data set's own mean and std, a gray
    /// image repeated to 3 channels when the model wants 3, and resized
    /// bilinearly (half-pixel centres, as torchvision's `Resize` without
    /// antialiasing) when the sizes differ.
    pub fn batch_for(
        &self,
        indices: &[u32],
        device: &Device,
        channels: usize,
        size: usize,
    ) -> (Tensor<4>, Tensor<1, Int>) {
        let (x, y) = self.batch(indices, device);
        (adapt(x, channels, size), y)
    }

    /// Samples per class [1].
    pub fn class_counts(&self, indices: &[u32]) -> Vec<u32> {
        let mut c = vec![0u32; self.classes];
        for &i in indices {
            c[self.labels[i as usize] as usize] += 1;
        }
        c
    }
}

/// Images `[B, C, H, W]` as a model taking `channels` x `size` x `size`
/// needs them (see [`Dataset::batch_for`]).
pub fn adapt(x: Tensor<4>, channels: usize, size: usize) -> Tensor<4> {
    use burn::tensor::module::interpolate;
    use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
    let [_, c, h, w] = x.dims();
    let x = if c == 1 && channels == 3 { x.repeat_dim(1, 3) } else { x };
    if (h, w) == (size, size) {
        return x;
    }
    let opts =
        InterpolateOptions::new(InterpolateMode::Bilinear).with_align_corners(false).with_output_size([size, size]);
    interpolate(x, opts)
}

/// The train and test sets of `kind`. `dir` empty means the default
/// location (Fashion-MNIST: Debian's package; CIFAR has none).
pub fn load(kind: DatasetKind, dir: &str, synthetic_seed: u64) -> Result<(Dataset, Dataset)> {
    match kind {
        DatasetKind::FashionMnist => {
            let dir = if dir.is_empty() { fashion_mnist_default_dir() } else { Path::new(dir) };
            Ok((fashion_mnist(dir, "train")?, fashion_mnist(dir, "t10k")?))
        }
        DatasetKind::Cifar10 | DatasetKind::Cifar100 => {
            if dir.is_empty() {
                return Err(Error::Input(
                    "training.data_dir: CIFAR needs the folder of its binary version \
                     (cifar-10-batches-bin or cifar-100-binary); it is not downloaded at run time"
                        .into(),
                ));
            }
            cifar(kind, Path::new(dir))
        }
        DatasetKind::Synthetic => Ok(synthetic(synthetic_seed, 2000, 500)),
    }
}

fn open(path: &Path, hint: &str) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::Input(format!("{}: {e}; {hint}", path.display())))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| Error::Input(format!("{}: bad gzip: {e}", path.display())))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// One IDX file (big-endian header: magic, then one u32 per dimension).
fn idx(path: &Path, want_dims: usize) -> Result<(Vec<usize>, Vec<u8>)> {
    let hint = "install Fashion-MNIST with `apt-get install dataset-fashion-mnist` or set training.data_dir";
    let bytes = open(path, hint)?;
    let bad =
        |what: &str| Error::Input(format!("{}: not an IDX file of u8 with {want_dims} dims: {what}", path.display()));
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08 || bytes[3] as usize != want_dims {
        return Err(bad("magic"));
    }
    let head = 4 + 4 * want_dims;
    if bytes.len() < head {
        return Err(bad("short header"));
    }
    let dims: Vec<usize> = (0..want_dims)
        .map(|i| u32::from_be_bytes([bytes[4 + 4 * i], bytes[5 + 4 * i], bytes[6 + 4 * i], bytes[7 + 4 * i]]) as usize)
        .collect();
    if let Some(i) = dims.iter().position(|&d| d == 0) {
        return Err(Error::Input(format!(
            "{}: dimension {} of the IDX header is 0: a data set needs at least one item of at least 1x1 pixels",
            path.display(),
            i + 1
        )));
    }
    let body = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if body.and_then(|b| b.checked_add(head)) != Some(bytes.len()) {
        return Err(bad(&format!("length {} does not match the header's dimensions {dims:?}", bytes.len())));
    }
    Ok((dims, bytes[head..].to_vec()))
}

fn fashion_mnist(dir: &Path, split: &str) -> Result<Dataset> {
    let find = |stem: &str| crate::config::inputs::fashion_mnist_file(dir, stem);
    let (idims, pixels) = idx(&find(&format!("{split}-images-idx3-ubyte")), 3)?;
    let (ldims, labels) = idx(&find(&format!("{split}-labels-idx1-ubyte")), 1)?;
    if idims[1] != idims[2] {
        return Err(Error::Input(format!(
            "{}: {split} images are {}x{} pixels: square images are needed",
            dir.display(),
            idims[1],
            idims[2]
        )));
    }
    if idims[0] != ldims[0] {
        return Err(Error::Input(format!(
            "{}: {} {split} images but {} labels: one label per image is needed",
            dir.display(),
            idims[0],
            ldims[0]
        )));
    }
    if let Some(l) = labels.iter().find(|&&l| l >= 10) {
        return Err(Error::Input(format!("{}: {split} label {l}: allowed 0..=9", dir.display())));
    }
    Ok(Dataset {
        pixels,
        labels: labels.into_iter().map(u16::from).collect(),
        channels: 1,
        size: idims[1],
        classes: 10,
        mean: vec![0.2860],
        std: vec![0.3530],
    })
}

/// CIFAR binary records: label byte(s) then 3072 pixel bytes (R, G, B planes).
fn cifar(kind: DatasetKind, dir: &Path) -> Result<(Dataset, Dataset)> {
    let (train_files, test_files, label_bytes, classes): (Vec<String>, Vec<String>, usize, usize) = match kind {
        DatasetKind::Cifar10 => {
            ((1..=5).map(|i| format!("data_batch_{i}.bin")).collect(), vec!["test_batch.bin".into()], 1, 10)
        }
        _ => (vec!["train.bin".into()], vec!["test.bin".into()], 2, 100),
    };
    let read = |files: &[String]| -> Result<Dataset> {
        let mut pixels = Vec::new();
        let mut labels = Vec::new();
        for f in files {
            let path = dir.join(f);
            let bytes = open(&path, "give training.data_dir the folder of the CIFAR binary version")?;
            let rec = label_bytes + 3072;
            if bytes.len() % rec != 0 {
                return Err(Error::Input(format!(
                    "{}: length is not a multiple of {rec}-byte records",
                    path.display()
                )));
            }
            for r in bytes.chunks_exact(rec) {
                // CIFAR-100 stores (coarse, fine): the fine label is the class.
                let l = r[label_bytes - 1] as u16;
                if l as usize >= classes {
                    return Err(Error::Input(format!("{}: label {l}: allowed 0..{classes}", path.display())));
                }
                labels.push(l);
                pixels.extend_from_slice(&r[label_bytes..]);
            }
        }
        if labels.is_empty() {
            return Err(Error::Input(format!(
                "{}: {} hold no images; a data set needs at least one",
                dir.display(),
                files.join(", ")
            )));
        }
        Ok(Dataset {
            pixels,
            labels,
            channels: 3,
            size: 32,
            classes,
            mean: vec![0.4914, 0.4822, 0.4465],
            std: vec![0.2470, 0.2435, 0.2616],
        })
    };
    Ok((read(&train_files)?, read(&test_files)?))
}

/// A learnable 28x28x1, 10-class set: each class is a random prototype
/// image; a sample is its prototype plus uniform noise of ±64.
pub fn synthetic(seed: u64, train: usize, test: usize) -> (Dataset, Dataset) {
    let (classes, size) = (10usize, 28usize);
    let plane = size * size;
    let mut rng = crate::sim::rng::stream(seed, "synthetic-data", 0);
    let protos: Vec<Vec<u8>> = (0..classes).map(|_| (0..plane).map(|_| rng.random::<u8>()).collect()).collect();
    let mut make = |n: usize| {
        let mut pixels = Vec::with_capacity(n * plane);
        let mut labels = Vec::with_capacity(n);
        for i in 0..n {
            let c = i % classes;
            labels.push(c as u16);
            pixels.extend(protos[c].iter().map(|&p| (p as i32 + rng.random_range(-64..=64)).clamp(0, 255) as u8));
        }
        Dataset { pixels, labels, channels: 1, size, classes, mean: vec![0.5], std: vec![0.3] }
    };
    let tr = make(train);
    let te = make(test);
    (tr, te)
}

/// Splits `data` over `devices`: first `min_samples` each, dealt from a
/// shuffled pool, then every class's remaining samples by Dirichlet(α)
/// proportions (one Gamma(α, 1) draw per device, normalized), rounded by
/// largest remainder so that counts add up exactly. One pass, no
/// rejection: α = 0.1 over 1,000 devices costs one draw per device and class.
pub fn dirichlet_partition(
    data: &Dataset,
    devices: usize,
    alpha: f64,
    min_samples: usize,
    rng: &mut Pcg64,
) -> Result<Vec<Vec<u32>>> {
    let need = devices.saturating_mul(min_samples);
    if need > data.len() {
        return Err(Error::Input(format!(
            "training.min_samples: {devices} devices x {min_samples} samples = {need} > {} training samples",
            data.len()
        )));
    }
    let gamma = Gamma::new(alpha, 1.0)
        .map_err(|e| Error::Input(format!("training.dirichlet_alpha = {alpha}: {e}; allowed > 0")))?;
    let mut pool: Vec<u32> = (0..data.len() as u32).collect();
    pool.shuffle(rng);
    let mut parts: Vec<Vec<u32>> = vec![Vec::new(); devices];
    for (k, &i) in pool[..need].iter().enumerate() {
        parts[k % devices].push(i);
    }
    let mut by_class: Vec<Vec<u32>> = vec![Vec::new(); data.classes];
    for &i in &pool[need..] {
        by_class[data.labels[i as usize] as usize].push(i);
    }
    let mut share = vec![0f64; devices];
    for idx in by_class {
        if idx.is_empty() {
            continue;
        }
        for s in share.iter_mut() {
            *s = gamma.sample(rng);
        }
        let total: f64 = share.iter().sum();
        if total <= 0.0 {
            // Every draw underflowed (tiny α): the limit of Dirichlet(α -> 0)
            // puts the whole class on one device.
            share.iter_mut().for_each(|s| *s = 0.0);
            share[rng.random_range(0..devices)] = 1.0;
        }
        let total: f64 = share.iter().sum();
        let n = idx.len();
        let exact: Vec<f64> = share.iter().map(|s| s / total * n as f64).collect();
        let mut counts: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
        let mut rest = n - counts.iter().sum::<usize>();
        if rest > 0 {
            let mut order: Vec<usize> = (0..devices).collect();
            // Largest fractional part first; ties by device index.
            order.sort_by(|&a, &b| {
                (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())).then(a.cmp(&b))
            });
            for &d in order.iter().cycle() {
                if rest == 0 {
                    break;
                }
                counts[d] += 1;
                rest -= 1;
            }
        }
        let mut at = 0;
        for (d, &c) in counts.iter().enumerate() {
            parts[d].extend_from_slice(&idx[at..at + c]);
            at += c;
        }
    }
    Ok(parts)
}
