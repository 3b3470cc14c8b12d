"""Cross-channel family: how the C channels of one frame relate to each other.

Conventions (every feature):

* correlations are Pearson over the ``H W`` pixels with the **population** convention
  (``R = Z Z^T / (H W)``, ``Z`` the per-channel standardised fields,
  :func:`~spinlock_core.features.ops.standardize`); ``R_ii = 1``; a constant channel has
  ``r = 0`` with every other channel;
* eigenvalues of ``R`` by ``torch.linalg.eigvalsh`` (float64), clipped at 0 and divided by their
  sum (``= C``), so they sum to 1, in descending order;
* "pairs" are the ``C (C - 1) / 2`` unordered channel pairs ``i < j``; "triples" are the
  ``C (C - 1) (C - 2) / 2`` pairs ``{i, j}`` with a third conditioning channel ``k`` (``I(X;Y|Z)``
  is symmetric in X, Y, so this equals the mean over ordered triples);
* mutual information by the plug-in histogram estimator: each channel binned into ``B`` equal
  bins over its own ``[min, max]`` in that frame (last bin closed; a constant channel falls in bin
  0), joint histogram over the pixels, entropies in **nats**; identical to
  ``sklearn.metrics.mutual_info_score`` on the same bin labels. Its bias for independent
  channels is about ``(B - 1)^2 / (2 H W)``;
* spectra ``Z_c(k) = fft2(z_c, norm="ortho")`` of the standardised channels on the full plane,
  DC excluded; integer radial shells ``n = round(|k|)``, ``n = 1..floor(k_N)``, ``k_N = min(H, W)/2``
  (:mod:`._spectral_util`); computed by ``rfft2`` with conjugate multiplicities (same sums);
* implementation: the MI and CMI histograms come from one ``bincount`` of the joint labels of all
  channels when ``B^C`` cells fit (C = 3), else one per pair / triple.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from itertools import combinations

import torch
from pydantic import Field, model_validator

from spinlock_core.features.families._spectral_util import group_masks, half_plane, half_plane_matrix, linear_dtype
from spinlock_core.features.families.base import Family, FamilyConfig, register_family
from spinlock_core.features.ops import entropy_from_counts, histogram_labels, offset_bincount, zero_rows
from spinlock_core.features.spec import FeatureSpec

__all__ = ["CrossChannelConfig", "CrossChannelFamily", "bin_labels"]

#: a shell holding less than this share of a channel's non-DC power counts as powerless in coherence
_SHELL_FLOOR = 1e-10


class CrossChannelConfig(FamilyConfig):
    """Parameters of the cross-channel family."""

    num_eigen: int = Field(
        default=3, ge=1, le=10, description="number of leading correlation eigenvalues stored (eigen_top_1..num_eigen)"
    )
    eigen_floor: float = Field(
        default=1e-6,
        ge=1e-12,
        le=1e-2,
        description="floor on the smallest normalised eigenvalue in the log condition number",
    )
    mi_bins: int = Field(default=16, ge=2, le=64, description="bins per channel of the mutual-information histogram")
    cmi_bins: int = Field(
        default=8,
        ge=2,
        le=16,
        description="bins per channel of the conditional-mutual-information histogram (B^3 joint cells)",
    )
    coherence_low_cutoff: float = Field(
        default=0.25,
        gt=0.0,
        lt=1.0,
        description="low/mid shell boundary of the coherence groups, fraction of the Nyquist radius",
    )
    coherence_high_cutoff: float = Field(
        default=0.5,
        gt=0.0,
        le=1.0,
        description="mid/high shell boundary of the coherence groups, fraction of the Nyquist radius",
    )

    @model_validator(mode="after")
    def _cutoffs_ordered(self):
        if not self.coherence_low_cutoff < self.coherence_high_cutoff:
            raise ValueError("coherence_low_cutoff must be < coherence_high_cutoff")
        return self


def bin_labels(v: torch.Tensor, bins: int) -> torch.Tensor:
    """Equal-width bin labels ``0..bins-1`` of ``v [..., K]`` over each row's own ``[min, max]``.

    Same rule as :func:`~spinlock_core.features.ops.histogram_counts`: ``floor((v - min) / (max -
    min) * bins)`` clamped to the last bin (so ``max`` is in it); a constant row is all bin 0.
    """
    return histogram_labels(v, bins, v.amin(-1), v.amax(-1)).long()


def _joint_counts(labels: list[torch.Tensor], bins: int) -> torch.Tensor:
    """Joint histogram ``[n, bins, ..., bins]`` (one axis per entry, float32) of label tensors ``[n, K]``
    (int32 in ``0..bins-1``), by one ``bincount`` (cell ``(a, b, ...)`` = row-major index)."""
    n = labels[0].shape[0]
    cells = bins ** len(labels)
    joint = torch.arange(n, device=labels[0].device, dtype=torch.int32).mul_(bins).unsqueeze(1) + labels[0]
    for lab in labels[1:]:
        joint = joint.mul_(bins).add_(lab)
    return offset_bincount(joint, n, cells).view(n, *([bins] * len(labels)))


def _marginal(counts: torch.Tensor, keep: tuple[int, ...]) -> torch.Tensor:
    """Sum the channel axes (1..C) of ``counts [n, B, ..., B]`` not in ``keep`` (channel numbers, increasing)."""
    drop = tuple(1 + a for a in range(counts.ndim - 1) if a not in keep)
    return counts.sum(drop) if drop else counts


def _coarsen(counts: torch.Tensor, factor: int) -> torch.Tensor:
    """Merge ``factor`` consecutive bins on every channel axis of ``counts [n, B, ..., B]``."""
    n, nd, b = counts.shape[0], counts.ndim - 1, counts.shape[1]
    shape = [n] + [v for _ in range(nd) for v in (b // factor, factor)]
    return counts.reshape(shape).sum(tuple(range(2, 2 * nd + 1, 2)))


@lru_cache(maxsize=32)
def _group_weights(n_shells: int, k_nyq: float, low: float, high: float, device: str) -> torch.Tensor:
    """``[n_shells, 3]``: 1 / (group size) on the shells of the low / mid / high coherence groups
    (:func:`group_masks`), so ``coh @ W`` are the group means without a masked (synchronising) gather."""
    masks = group_masks(n_shells, k_nyq, low, high, "cpu")
    return torch.stack([m.float() / max(int(m.sum()), 1) for m in masks], 1).to(device)


def _spec(name, desc, units="dimensionless", conv="", min_channels=2, default=True):
    flag = "cross_channel.enabled" if default else f"cross_channel.include: {name}"
    return FeatureSpec(
        name=name,
        family="cross_channel",
        granularity="timestep",
        description=desc,
        units=units,
        convention=conv,
        flag=flag,
        default=default,
        min_channels=min_channels,
    )


_CORR = "Pearson over pixels, population convention; R_ii = 1; constant channel -> r = 0"
_EIG = "eigvalsh of the C x C Pearson matrix (population), clipped at 0, divided by their sum C (sum to 1), descending"
_MI = "plug-in histogram MI, B equal bins per channel over its [min, max] in the frame, nats (= sklearn mutual_info_score on the labels)"
_SPEC = 'Z = fft2(standardised channel, norm="ortho") on the full plane, DC excluded; integer shells n = round(|k|), n = 1..floor(min(H,W)/2)'


@register_family
class CrossChannelFamily(Family[CrossChannelConfig]):
    """Channel correlation eigen-structure, correlation stats, (conditional) MI, shell coherence, phase locking."""

    name = "cross_channel"
    granularity = "timestep"
    config_model = CrossChannelConfig
    description = "Relations between the channels of each frame: correlation spectrum, information, coherence."

    def catalogue(self, cfg: CrossChannelConfig) -> list[FeatureSpec]:
        out = [
            _spec(
                f"cross_channel_eigen_top_{i}",
                f"{i}-th largest eigenvalue of the channel correlation matrix divided by C "
                "(share of standardised variance on the i-th principal axis)",
                conv=_EIG,
                min_channels=max(2, i),
            )
            for i in range(1, cfg.num_eigen + 1)
        ]
        lo, hi = cfg.coherence_low_cutoff, cfg.coherence_high_cutoff
        coh = (
            "shell coherence coh_n = (sum_shell Re Z_i Z_j*)^2 / (sum_shell |Z_i|^2 sum_shell |Z_j|^2) "
            "(= squared correlation of the two channels band-passed to shell n), averaged over the shells n {} "
            "and over channel pairs"
        )
        coh_conv = (
            f"{_SPEC}; unweighted mean over shells; a shell where either channel holds < 1e-10 of its non-DC power "
            "(float32 rounding noise) counts 0; an empty group is 0; independent noise gives ~ mean over shells of 1/#modes(n); 1 for a scaled copy"
        )
        b, bc = cfg.mi_bins, cfg.cmi_bins
        out += [
            _spec(
                "cross_channel_participation_ratio",
                "participation ratio 1 / sum_i lambda_i^2 of the normalised eigenvalues, "
                "in [1, C] (effective number of independent channels)",
                conv=_EIG,
            ),
            _spec(
                "cross_channel_eigen_entropy",
                "-sum_i lambda_i ln lambda_i / ln C of the normalised eigenvalues, in [0, 1]",
                conv=f"{_EIG}; nats / ln C (0 ln 0 = 0)",
            ),
            _spec(
                "cross_channel_log_condition",
                "log10(lambda_max / max(lambda_min, floor)) of the normalised eigenvalues",
                "log10",
                f"{_EIG}; floor = {cfg.eigen_floor:g} (so at most log10(1/floor))",
            ),
            _spec(
                "cross_channel_corr_mean", "mean over channel pairs i < j of the Pearson correlation r_ij", conv=_CORR
            ),
            _spec("cross_channel_corr_abs_mean", "mean over channel pairs of |r_ij|", conv=_CORR),
            _spec("cross_channel_corr_max", "largest r_ij over channel pairs", conv=_CORR),
            _spec("cross_channel_corr_min", "smallest r_ij over channel pairs", conv=_CORR),
            _spec(
                "cross_channel_corr_std",
                "std of r_ij over the C(C-1)/2 channel pairs (population)",
                conv=_CORR,
                min_channels=3,
            ),
            _spec(
                "cross_channel_mi_mean",
                f"mean over channel pairs of the mutual information I(X;Y), {b} bins",
                "nats",
                _MI.replace("B equal", f"B = {b} equal"),
            ),
            _spec(
                "cross_channel_mi_max",
                f"largest pairwise mutual information I(X;Y), {b} bins",
                "nats",
                _MI.replace("B equal", f"B = {b} equal"),
            ),
            _spec(
                "cross_channel_cmi_mean",
                f"mean over channel pairs {{i, j}} and third channels k of I(X_i; X_j | X_k) = "
                f"H(XZ) + H(YZ) - H(XYZ) - H(Z), {bc} bins",
                "nats",
                f"plug-in histogram, B = {bc} equal bins per channel over its [min, max], B^3 joint cells, nats; clipped at 0; "
                "equals the mean over ordered triples",
                min_channels=3,
            ),
            _spec("cross_channel_coherence_low", coh.format(f"< {lo} k_N"), conv=coh_conv),
            _spec("cross_channel_coherence_mid", coh.format(f"in [{lo} k_N, {hi} k_N)"), conv=coh_conv),
            _spec("cross_channel_coherence_high", coh.format(f">= {hi} k_N (up to floor(k_N))"), conv=coh_conv),
            _spec(
                "cross_channel_plv",
                "phase-locking value |sum_k w_k exp(i(phi_i(k) - phi_j(k)))| / sum_k w_k with weights "
                "w_k = |Z_i(k)| |Z_j(k)| over non-DC modes, mean over pairs; 1 when one channel is a real-filtered copy of the other",
                conv=f"{_SPEC}; full plane (the sum is real: sum_k w_k cos dphi); = |r_ij| H W / sum_k |Z_i||Z_j| >= |r_ij|; "
                "~1/sqrt(#modes) for independent channels",
            ),
            # opt-ins
            _spec(
                "cross_channel_mi_min", f"smallest pairwise mutual information, {b} bins", "nats", _MI, default=False
            ),
            _spec(
                "cross_channel_cmi_max",
                f"largest I(X_i; X_j | X_k) over pairs and third channels, {bc} bins",
                "nats",
                "as cross_channel_cmi_mean",
                min_channels=3,
                default=False,
            ),
        ]
        return out

    def compute(self, x: torch.Tensor, cfg: CrossChannelConfig, names: Sequence[str]) -> dict[str, torch.Tensor]:
        n, c, h, w = x.shape
        hw = h * w
        dev = x.device
        u = x.to(torch.float32).reshape(n, c, hw)
        umax, umin = u.amax(-1), u.amin(-1)  # NaN/Inf propagate
        finite = (torch.isfinite(umax) & torch.isfinite(umin)).all(1)
        u = zero_rows(u, finite)
        umax, umin = torch.where(finite.view(-1, 1), umax, 0.0), torch.where(finite.view(-1, 1), umin, 0.0)
        want = set(names) if names else {s.name for s in self.catalogue(cfg)}
        zero = torch.zeros(n, device=dev)
        out: dict[str, torch.Tensor] = {}
        pairs = list(combinations(range(c), 2))

        # ---- correlation matrix and its eigenvalues (z = ops.standardize(u), bit for bit)
        z = u - u.mean(-1, keepdim=True)
        sd = z.square().mean(-1, keepdim=True).sqrt()
        z.div_(torch.where(sd > 0, sd, torch.full_like(sd, math.inf)))  # 0 where sd == 0
        R = (z @ z.transpose(1, 2)) / hw
        eye = torch.eye(c, dtype=torch.bool, device=dev)
        R = torch.where(eye, torch.ones((), device=dev), R.clamp(-1.0, 1.0))
        lam = torch.linalg.eigvalsh(R.double()).flip(-1).clamp_min(0.0)
        lam = (lam / lam.sum(-1, keepdim=True).clamp_min(1e-300)).float()
        for i in range(1, cfg.num_eigen + 1):
            out[f"cross_channel_eigen_top_{i}"] = lam[:, i - 1] if i <= c else zero
        out["cross_channel_participation_ratio"] = 1.0 / lam.square().sum(-1).clamp_min(1e-30)
        ent = -(torch.where(lam > 0, lam * lam.clamp_min(1e-38).log(), torch.zeros_like(lam))).sum(-1)
        out["cross_channel_eigen_entropy"] = (ent / math.log(c)).clamp(0.0, 1.0) if c > 1 else zero
        out["cross_channel_log_condition"] = torch.log10(
            lam[:, 0].clamp_min(cfg.eigen_floor) / lam[:, -1].clamp_min(cfg.eigen_floor)
        )

        pair_names = {
            "cross_channel_corr_mean",
            "cross_channel_corr_abs_mean",
            "cross_channel_corr_max",
            "cross_channel_corr_min",
            "cross_channel_corr_std",
            "cross_channel_mi_mean",
            "cross_channel_mi_max",
            "cross_channel_mi_min",
            "cross_channel_coherence_low",
            "cross_channel_coherence_mid",
            "cross_channel_coherence_high",
            "cross_channel_plv",
        }
        if not pairs:
            out.update({k: zero for k in pair_names | {"cross_channel_cmi_mean", "cross_channel_cmi_max"}})
            return self._finish(out, want, finite)
        first = torch.tensor([p[0] for p in pairs], device=dev)
        second = torch.tensor([p[1] for p in pairs], device=dev)
        r = R[:, first, second]
        out["cross_channel_corr_mean"] = r.mean(-1)
        out["cross_channel_corr_abs_mean"] = r.abs().mean(-1)
        out["cross_channel_corr_max"] = r.amax(-1)
        out["cross_channel_corr_min"] = r.amin(-1)
        out["cross_channel_corr_std"] = (r - r.mean(-1, keepdim=True)).square().mean(-1).sqrt()

        # ---- (conditional) mutual information from joint histograms (bincount of combined labels)
        triples = [(i, j, k) for (i, j) in pairs for k in range(c) if k != i and k != j]
        need_mi = bool(want & {"cross_channel_mi_mean", "cross_channel_mi_max", "cross_channel_mi_min"})
        need_cmi = bool(triples) and bool(want & {"cross_channel_cmi_mean", "cross_channel_cmi_max"})
        if need_mi or need_cmi:
            self._information(u, umin, umax, cfg, pairs, triples, need_mi, need_cmi, out)
        if not need_cmi:
            out["cross_channel_cmi_mean"] = out["cross_channel_cmi_max"] = zero

        # ---- shell coherence and phase locking (rfft2 half plane, mirror-weighted sums)
        if want & {
            "cross_channel_coherence_low",
            "cross_channel_coherence_mid",
            "cross_channel_coherence_high",
            "cross_channel_plv",
        }:
            hp = half_plane(h, w, 1, dev)
            geo = hp.geo
            Z = torch.fft.rfft2(z.view(n, c, h, w), norm="ortho").flatten(2)  # [n, c, M]
            del z
            re, im = Z.real, Z.imag
            pi, pj = [p[0] for p in pairs], [p[1] for p in pairs]
            rows = torch.empty(n, c + len(pairs), hp.m, device=dev)  # |Z_c|^2, then Re Z_i Z_j* per pair
            for i in range(c):
                torch.mul(re[:, i], re[:, i], out=rows[:, i]).addcmul_(im[:, i], im[:, i])
            for q, (i, j) in enumerate(pairs):
                torch.mul(re[:, i], re[:, j], out=rows[:, c + q]).addcmul_(im[:, i], im[:, j])
            del Z, re, im
            lin_dt = linear_dtype(dev)
            sums = (rows.to(lin_dt) @ half_plane_matrix(hp, "sym", lin_dt)).to(
                torch.float32
            )  # [n, c + P, 6 + ns]: col 0 non-DC total, 6.. shells
            pw, sx = sums[:, :c, 6:], sums[:, c:, 6:]
            live = pw > _SHELL_FLOOR * sums[:, :c, :1]  # shells above float32 rounding noise
            den = pw[:, pi] * pw[:, pj]
            ok = live[:, pi] & live[:, pj]
            coh = torch.where(
                ok, sx.square() / torch.where(ok, den, torch.ones_like(den)), torch.zeros_like(den)
            ).clamp(0.0, 1.0)
            gmean = coh @ _group_weights(
                geo.n_shells, geo.k_nyq, cfg.coherence_low_cutoff, cfg.coherence_high_cutoff, str(dev)
            )
            for g, key in enumerate(("low", "mid", "high")):  # mean over the group's shells (0 for an empty group)
                out[f"cross_channel_coherence_{key}"] = gmean[..., g].mean(-1)
            amp = rows[:, :c].sqrt_()
            prod = torch.stack([amp[:, i] * amp[:, j] for (i, j) in pairs], 1)
            wsum = (prod.to(lin_dt) @ half_plane_matrix(hp, "weight", lin_dt)).to(torch.float32)  # sum_full |Z_i| |Z_j|
            okw = wsum > 1e-20
            plv = torch.where(
                okw, sums[:, c:, 0].abs() / torch.where(okw, wsum, torch.ones_like(wsum)), torch.zeros_like(wsum)
            )
            out["cross_channel_plv"] = plv.clamp(0.0, 1.0).mean(-1)
        return self._finish(out, want, finite)

    @staticmethod
    def _information(u, umin, umax, cfg, pairs, triples, need_mi, need_cmi, out) -> None:
        """MI over pairs and CMI over (pair, third channel) into ``out`` (see the module docstring)."""
        n, c, hw = u.shape
        B, Bc = cfg.mi_bins, cfg.cmi_bins
        ratio = B // Bc
        nested = B % Bc == 0 and ratio & (ratio - 1) == 0  # Bc labels = B labels >> m (exact)
        lab = histogram_labels(u, B, umin, umax)  # [n, c, hw] int32
        if nested and B**c <= hw:  # one joint histogram of all the channels
            full = _joint_counts([lab[:, i] for i in range(c)], B)
            joint2 = {p: _marginal(full, p) for p in pairs} if need_mi else {}
            marg1 = [_marginal(full, (i,)) for i in range(c)] if need_mi else []
            fullc = _coarsen(full, ratio) if need_cmi else None
            joint3 = (
                {
                    t: _marginal(fullc, tuple(sorted(t))).permute(0, *(1 + sorted(t).index(a) for a in t))
                    for t in triples
                }
                if fullc is not None  # = need_cmi
                else {}
            )
        else:
            joint2 = {(i, j): _joint_counts([lab[:, i], lab[:, j]], B) for (i, j) in pairs} if need_mi else {}
            marg1 = (
                [
                    offset_bincount(
                        lab[:, i] + torch.arange(n, device=u.device, dtype=torch.int32).mul_(B).unsqueeze(1), n, B
                    )
                    for i in range(c)
                ]
                if need_mi
                else []
            )
            labc = (lab >> (ratio.bit_length() - 1)) if nested else histogram_labels(u, Bc, umin, umax)
            joint3 = {t: _joint_counts([labc[:, a] for a in t], Bc) for t in triples} if need_cmi else {}
        if need_mi:
            hm = torch.stack([entropy_from_counts(m) for m in marg1], 1)  # [n, c]
            hj = torch.stack([entropy_from_counts(joint2[p].reshape(n, B * B)) for p in pairs], 1)
            ci = torch.tensor([p[0] for p in pairs], device=u.device)
            cj = torch.tensor([p[1] for p in pairs], device=u.device)
            mi = (hm[:, ci] + hm[:, cj] - hj).clamp_min(0.0)
            out["cross_channel_mi_mean"] = mi.mean(-1)
            out["cross_channel_mi_max"] = mi.amax(-1)
            out["cross_channel_mi_min"] = mi.amin(-1)
        if need_cmi:
            c4 = torch.stack([joint3[t] for t in triples], 1)  # [n, t, x, y, z]
            h_xyz = entropy_from_counts(c4.reshape(n, len(triples), Bc**3))
            h_xz = entropy_from_counts(c4.sum(3).flatten(2))
            h_yz = entropy_from_counts(c4.sum(2).flatten(2))
            h_z = entropy_from_counts(c4.sum((2, 3)))
            cmi = (h_xz + h_yz - h_xyz - h_z).clamp_min(0.0)
            out["cross_channel_cmi_mean"] = cmi.mean(-1)
            out["cross_channel_cmi_max"] = cmi.amax(-1)

    @staticmethod
    def _finish(out: dict[str, torch.Tensor], want: set[str], finite: torch.Tensor) -> dict[str, torch.Tensor]:
        nan = torch.full((), float("nan"), device=finite.device)
        return {k: torch.where(finite, v.to(torch.float32), nan) for k, v in out.items() if k in want}
