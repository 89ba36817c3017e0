"""Random views of a whole batch at once: crop, flip, colour jitter, grayscale, blur.

An :class:`AugmentPolicy` turns a float batch (B, C, H, W) in [0, 1] into one random view per
image. Every image gets its own parameters (as if torchvision's transforms ran image by image),
but the work is done with a handful of batched tensor operations on the batch's device, and
every random number comes from the ``torch.Generator`` passed in. The same generator state
therefore gives the same views, which is how f and g can be shown identical views.

How the views differ from torchvision's ``RandomResizedCrop → RandomHorizontalFlip →
RandomApply(ColorJitter) → RandomGrayscale → RandomApply(GaussianBlur)``:

- The crop box is drawn exactly as ``RandomResizedCrop.get_params`` draws it (10 attempts,
  integer box, centre-crop fallback). Crop, resize and flip are then one bilinear
  ``grid_sample`` with half-pixel centres; inside the box this equals torchvision's
  ``resized_crop``, but output pixels on the box's edge blend in the image pixel just outside
  the box where torchvision repeats the edge pixel (a sub-pixel difference).
- Colour jitter applies brightness, contrast, saturation and hue in a random order drawn per
  image, as ``ColorJitter`` does, with torchvision's formulas (hue goes through HSV exactly).
- On 1-channel (grayscale) images, as in torchvision, colour jitter changes brightness and
  contrast only (saturation and hue leave a gray image as it is) and grayscale is a no-op.
  Without the intensity changes SimCLR on 1-channel Fashion-MNIST learns features no better
  than an untrained encoder's (measured: ``benchmarks/regime.py``).
- Gaussian blur (SimCLR's and BYOL's last view operation; off unless ``blur_p`` > 0) is
  torchvision's ``gaussian_blur``: a per-image sigma, a square kernel of ``blur_kernel`` pixels,
  reflected borders; done as two 1-D convolutions, equal to torchvision's 2-D one to rounding.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

# ITU-R 601 luma weights, the ones torchvision's rgb_to_grayscale uses.
_LUMA = (0.2989, 0.587, 0.114)
_CROP_ATTEMPTS = 10


def _pair(value, name: str) -> tuple[float, float]:
    value = tuple(float(v) for v in value)
    if len(value) != 2:
        raise ValueError(f"{name} must be a pair (low, high), got {value}")
    return value


@dataclass(frozen=True)
class AugmentPolicy:
    """Per-image random views of a batch, vectorised on the batch's device.

    Parameters
    ----------
    crop_scale : (low, high)
        Range of the crop's area as a fraction of the image (``RandomResizedCrop(scale=...)``).
    crop_ratio : (low, high)
        Range of the crop's aspect ratio w/h, sampled log-uniformly.
    hflip : float
        Probability of a horizontal flip.
    jitter : (brightness, contrast, saturation, hue)
        Strengths as in ``torchvision.transforms.ColorJitter``; 0 switches an operation off.
    jitter_p : float
        Probability that an image is colour-jittered.
    grayscale_p : float
        Probability that an image is turned gray (after jitter).
    blur_p : float
        Probability that an image is blurred (last); 0, the default, leaves views unblurred.
    blur_sigma : (low, high)
        Range of the blur's standard deviation in pixels, sampled uniformly per image.
    blur_kernel : int
        Side of the blur's square kernel, odd (SimCLR: about a tenth of the image side).

    Example
    -------
    >>> import torch
    >>> policy = AugmentPolicy.simclr()
    >>> views = policy(torch.rand(4, 3, 32, 32), torch.Generator().manual_seed(0))
    >>> tuple(views.shape), bool(views.min() >= 0 and views.max() <= 1)
    ((4, 3, 32, 32), True)
    """

    crop_scale: tuple[float, float] = (0.08, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip: float = 0.5
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1)
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    blur_p: float = 0.0
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    blur_kernel: int = 3

    def __post_init__(self):
        # Lists (from JSON or a TOML profile) become tuples so that equal policies compare equal.
        object.__setattr__(self, "crop_scale", _pair(self.crop_scale, "crop_scale"))
        object.__setattr__(self, "crop_ratio", _pair(self.crop_ratio, "crop_ratio"))
        object.__setattr__(self, "blur_sigma", _pair(self.blur_sigma, "blur_sigma"))
        jitter = tuple(float(v) for v in self.jitter)
        if len(jitter) != 4:
            raise ValueError(
                f"jitter must be (brightness, contrast, saturation, hue), got {jitter}"
            )
        object.__setattr__(self, "jitter", jitter)
        lo, hi = self.crop_scale
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"crop_scale must satisfy 0 < low <= high <= 1, got {self.crop_scale}")
        lo, hi = self.crop_ratio
        if not 0 < lo <= hi:
            raise ValueError(f"crop_ratio must satisfy 0 < low <= high, got {self.crop_ratio}")
        for name in ("hflip", "jitter_p", "grayscale_p", "blur_p"):
            p = getattr(self, name)
            if not 0 <= p <= 1:
                raise ValueError(f"{name} is a probability and must lie in [0, 1], got {p}")
        if min(jitter) < 0 or jitter[3] > 0.5:
            raise ValueError(f"jitter strengths must be >= 0 and hue <= 0.5, got {jitter}")
        lo, hi = self.blur_sigma
        if not 0 < lo <= hi:
            raise ValueError(f"blur_sigma must satisfy 0 < low <= high, got {self.blur_sigma}")
        if not (
            isinstance(self.blur_kernel, int) and self.blur_kernel > 0 and self.blur_kernel % 2
        ):
            raise ValueError(f"blur_kernel must be an odd positive int, got {self.blur_kernel!r}")

    # ---------------------------------------------------------------- presets
    @classmethod
    def simclr(cls) -> AugmentPolicy:
        """The paper's SimCLR recipe (NOTES §1): crop, flip, jitter (0.8, 0.8, 0.8, 0.2) with
        p=0.8, grayscale p=0.2. Stronger than the class defaults (jitter 0.4, hue 0.1)."""
        return cls(jitter=(0.8, 0.8, 0.8, 0.2), jitter_p=0.8, grayscale_p=0.2)

    @classmethod
    def unitmem_scripts(cls) -> AugmentPolicy:
        """The views of the official UnitMem scripts (NOTES §3.3): jitter (0.9, 0.9, 0.9, 0.1)
        with p=0.9, grayscale p=0.1."""
        return cls(jitter=(0.9, 0.9, 0.9, 0.1), jitter_p=0.9, grayscale_p=0.1)

    @classmethod
    def supervised(cls) -> AugmentPolicy:
        """Weak views for the supervised baseline: a mild crop (half the area or more) and a
        flip, no colour changes."""
        return cls(
            crop_scale=(0.5, 1.0), jitter=(0.0, 0.0, 0.0, 0.0), jitter_p=0.0, grayscale_p=0.0
        )

    @classmethod
    def mae(cls) -> AugmentPolicy:
        """MAE's views: a random resized crop (a fifth of the area or more) and a flip, no
        colour changes (the masking is MAE's augmentation)."""
        return cls(
            crop_scale=(0.2, 1.0), jitter=(0.0, 0.0, 0.0, 0.0), jitter_p=0.0, grayscale_p=0.0
        )

    @classmethod
    def identity(cls) -> AugmentPolicy:
        """No augmentation: the policy returns its input unchanged."""
        return cls(
            crop_scale=(1.0, 1.0),
            crop_ratio=(1.0, 1.0),
            hflip=0.0,
            jitter=(0.0, 0.0, 0.0, 0.0),
            jitter_p=0.0,
            grayscale_p=0.0,
        )

    @property
    def is_identity(self) -> bool:
        """True when every view of a square image is the image itself."""
        return (
            self.crop_scale == (1.0, 1.0)
            and self.crop_ratio == (1.0, 1.0)
            and self.hflip == 0
            and (self.jitter_p == 0 or not any(self.jitter))
            and self.grayscale_p == 0
            and self.blur_p == 0
        )

    # ---------------------------------------------------------------- (de)serialisation
    def to_dict(self) -> dict:
        """JSON-able fields (pairs as lists); ``from_dict`` inverts it. Without blur the blur
        fields are left out, so that the policies (and encoder keys) from before blur keep their
        dicts."""
        out = {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }
        if self.blur_p == 0:
            for name in ("blur_p", "blur_sigma", "blur_kernel"):
                del out[name]
        return out

    @classmethod
    def from_dict(cls, d: dict) -> AugmentPolicy:
        """The policy saved by :meth:`to_dict`; unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(
                f"unknown AugmentPolicy fields {sorted(unknown)}; known: {sorted(names)}"
            )
        return cls(**d)

    # ---------------------------------------------------------------- views
    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        """One random view of every image of ``x`` (float, (B, C, H, W), values in [0, 1])."""
        _check_batch(x)
        if self.is_identity and x.shape[-1] == x.shape[-2]:
            return x
        params = self.sample_params(x.shape[0], x.shape[-2], x.shape[-1], generator)
        return self.apply(x, params)

    def sample_params(
        self, n: int, height: int, width: int, generator: torch.Generator
    ) -> dict[str, Tensor]:
        """Draw the random parameters of ``n`` views of ``height`` x ``width`` images.

        The draws happen on the generator's device, in a fixed order and amount that does not
        depend on the images, so a generator state determines the views.

        Returns
        -------
        dict
            ``box`` (n, 4) float ``[top, left, h, w]`` in pixels; ``flip`` (n,) bool;
            ``jitter`` (n,) bool; ``factors`` (n, 4) brightness, contrast, saturation and hue
            factors; ``order`` (n, 4) the order of the four jitter operations; ``gray`` (n,) bool;
            with blur, ``blur`` (n,) bool and ``sigma`` (n,) float.
        """
        dev = generator.device

        def uniform(*shape, low=0.0, high=1.0):
            return torch.rand(*shape, generator=generator, device=dev) * (high - low) + low

        area = height * width
        log_ratio = (math.log(self.crop_ratio[0]), math.log(self.crop_ratio[1]))
        target_area = area * uniform(
            n, _CROP_ATTEMPTS, low=self.crop_scale[0], high=self.crop_scale[1]
        )
        aspect = torch.exp(uniform(n, _CROP_ATTEMPTS, low=log_ratio[0], high=log_ratio[1]))
        w = torch.round(torch.sqrt(target_area * aspect))
        h = torch.round(torch.sqrt(target_area / aspect))
        ok = (w > 0) & (w <= width) & (h > 0) & (h <= height)
        first = ok.to(torch.uint8).argmax(dim=1, keepdim=True)  # first attempt that fits
        w = w.gather(1, first).squeeze(1)
        h = h.gather(1, first).squeeze(1)
        found = ok.any(dim=1)
        # torchvision's fallback when no attempt fits: the largest centre crop within the ratios.
        in_ratio = width / height
        if in_ratio < self.crop_ratio[0]:
            fw, fh = width, round(width / self.crop_ratio[0])
        elif in_ratio > self.crop_ratio[1]:
            fw, fh = round(height * self.crop_ratio[1]), height
        else:
            fw, fh = width, height
        w = torch.where(found, w, torch.full_like(w, fw))
        h = torch.where(found, h, torch.full_like(h, fh))
        top = torch.floor(uniform(n) * (height - h + 1)).clamp(max=height - h)
        left = torch.floor(uniform(n) * (width - w + 1)).clamp(max=width - w)
        top = torch.where(found, top, torch.div(height - h, 2, rounding_mode="floor"))
        left = torch.where(found, left, torch.div(width - w, 2, rounding_mode="floor"))

        flip = uniform(n) < self.hflip
        jitter = uniform(n) < self.jitter_p
        b, c, s, hue = self.jitter
        factors = torch.stack(
            [
                uniform(n, low=max(0.0, 1 - b), high=1 + b),
                uniform(n, low=max(0.0, 1 - c), high=1 + c),
                uniform(n, low=max(0.0, 1 - s), high=1 + s),
                uniform(n, low=-hue, high=hue),
            ],
            dim=1,
        )
        order = torch.argsort(uniform(n, 4), dim=1)
        gray = uniform(n) < self.grayscale_p
        params = {
            "box": torch.stack([top, left, h, w], dim=1),
            "flip": flip,
            "jitter": jitter,
            "factors": factors,
            "order": order,
            "gray": gray,
        }
        # Drawn last and only with blur, so that a policy without it draws what it always drew.
        if self.blur_p > 0:
            params["blur"] = uniform(n) < self.blur_p
            params["sigma"] = uniform(n, low=self.blur_sigma[0], high=self.blur_sigma[1])
        return params

    def apply(self, x: Tensor, params: dict[str, Tensor]) -> Tensor:
        """The views of ``x`` given parameters from :meth:`sample_params`."""
        _check_batch(x)
        params = {k: v.to(x.device) for k, v in params.items()}
        x = resized_crop(x, params["box"], params["flip"])
        # torchvision's saturation and hue return a 1-channel image unchanged; brightness and
        # contrast apply to it as to RGB.
        strengths = self.jitter if x.shape[1] == 3 else (*self.jitter[:2], 0.0, 0.0)
        if any(strengths) and self.jitter_p > 0:
            x = color_jitter(x, params["factors"], params["order"], params["jitter"], strengths)
        if x.shape[1] == 3 and self.grayscale_p > 0:
            x = torch.where(params["gray"].view(-1, 1, 1, 1), grayscale(x).expand_as(x), x)
        if self.blur_p > 0:
            blurred = gaussian_blur(x, params["sigma"], self.blur_kernel)
            x = torch.where(params["blur"].view(-1, 1, 1, 1), blurred, x)
        return x


def _check_batch(x: Tensor) -> None:
    if not isinstance(x, Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"expected a batch of images (B, C, H, W), got {shape}")
    if not x.is_floating_point():
        raise TypeError(f"expected float images in [0, 1], got {x.dtype}; use images.float() / 255")


def resized_crop(x: Tensor, box: Tensor, flip: Tensor) -> Tensor:
    """Crop every image to its ``box`` ``[top, left, h, w]`` (pixels), resize it bilinearly to
    the input size and mirror it where ``flip`` is set, all in one ``grid_sample``."""
    bsz, _, height, width = x.shape
    top, left, h, w = box.to(x.dtype).unbind(1)
    # Normalised coordinates (align_corners=False): the output spans exactly the box's pixels.
    sx = torch.where(flip, -w, w) / width
    sy = h / height
    cx = (2 * left + w) / width - 1
    cy = (2 * top + h) / height - 1
    zero = torch.zeros_like(sx)
    theta = torch.stack([torch.stack([sx, zero, cx], 1), torch.stack([zero, sy, cy], 1)], 1)
    grid = F.affine_grid(theta, [bsz, 1, height, width], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def gaussian_blur(x: Tensor, sigma: Tensor, kernel_size: int) -> Tensor:
    """Blur every image with its own ``sigma`` (pixels) and a ``kernel_size`` square Gaussian
    kernel, borders reflected: torchvision's ``gaussian_blur``, as two 1-D convolutions."""
    bsz, channels, height, width = x.shape
    half = kernel_size // 2
    if half >= min(height, width):
        raise ValueError(
            f"blur_kernel {kernel_size} needs images larger than {half} pixels, "
            f"got {height}x{width}; use a smaller kernel"
        )
    offsets = torch.linspace(-half, half, kernel_size, device=x.device, dtype=x.dtype)
    pdf = torch.exp(-0.5 * (offsets / sigma.to(x).view(-1, 1)) ** 2)
    kernel = (pdf / pdf.sum(dim=1, keepdim=True)).repeat_interleave(channels, dim=0)
    # One group per image and channel, each with its image's kernel.
    out = F.pad(x.reshape(1, bsz * channels, height, width), [half] * 4, mode="reflect")
    out = F.conv2d(out, kernel.view(-1, 1, 1, kernel_size), groups=bsz * channels)
    out = F.conv2d(out, kernel.view(-1, 1, kernel_size, 1), groups=bsz * channels)
    return out.view(bsz, channels, height, width)


def grayscale(x: Tensor) -> Tensor:
    """Luma of RGB images, (B, 1, H, W), with torchvision's weights; a 1-channel image is its
    own luma."""
    if x.shape[1] == 1:
        return x
    r, g, b = x.unbind(1)
    return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(1)


def _blend(a: Tensor, b: Tensor, ratio: Tensor) -> Tensor:
    ratio = ratio.view(-1, 1, 1, 1)
    return (ratio * a + (1 - ratio) * b).clamp(0, 1)


def adjust_brightness(x: Tensor, factor: Tensor) -> Tensor:
    return _blend(x, torch.zeros_like(x), factor)


def adjust_contrast(x: Tensor, factor: Tensor) -> Tensor:
    return _blend(x, grayscale(x).mean(dim=(1, 2, 3), keepdim=True), factor)


def adjust_saturation(x: Tensor, factor: Tensor) -> Tensor:
    return _blend(x, grayscale(x), factor)


def adjust_hue(x: Tensor, shift: Tensor) -> Tensor:
    """Rotate the hue of every image by its ``shift`` (in turns, [-0.5, 0.5]) through HSV."""
    maxc, _ = x.max(dim=1)
    minc, _ = x.min(dim=1)
    r, g, b = x.unbind(1)
    delta = maxc - minc
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    # Hue in sixths of a turn, chosen by which channel holds the maximum (r wins ties, then g).
    hr = torch.remainder((g - b) / safe, 6)
    hg = (b - r) / safe + 2
    hb = (r - g) / safe + 4
    h6 = torch.where(maxc == r, hr, torch.where(maxc == g, hg, hb))
    h6 = torch.where(delta > 0, h6, torch.zeros_like(h6))
    s = delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc))  # delta is 0 where maxc is
    h6 = torch.remainder(h6 + 6 * shift.view(-1, 1, 1), 6)
    # HSV back to RGB in closed form: channel n uses k = (n + h6) mod 6, n = 5, 3, 1 for r, g, b.
    out = []
    for n in (5.0, 3.0, 1.0):
        k = torch.remainder(n + h6, 6)
        out.append(maxc - maxc * s * torch.clamp(torch.minimum(k, 4 - k), 0, 1))
    return torch.stack(out, dim=1)


_JITTER_OPS = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)


def color_jitter(
    x: Tensor, factors: Tensor, order: Tensor, apply: Tensor, strengths: tuple[float, ...]
) -> Tensor:
    """Brightness, contrast, saturation and hue with per-image ``factors`` in a per-image
    ``order``, on the images where ``apply`` is set; operations of strength 0 are skipped."""
    x = x.clone()
    for stage in range(4):
        for op in range(4):
            if strengths[op] == 0:
                continue
            rows = torch.nonzero(apply & (order[:, stage] == op)).squeeze(1)
            if rows.numel():
                x[rows] = _JITTER_OPS[op](x[rows], factors[rows, op])
    return x
