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
  (:mod:`._spectral_util`).
"""

from __future__ import annotations

import math
from itertools import combinations
from typing import Sequence

import torch
from pydantic import Field, model_validator

from spinlock_core.features.families._spectral_util import geometry, group_masks, shell_sums
from spinlock_core.features.families.base import Family, FamilyConfig, register_family
from spinlock_core.features.ops import entropy_from_counts, standardize
from spinlock_core.features.spec import FeatureSpec

__all__ = ["CrossChannelConfig", "CrossChannelFamily", "bin_labels"]

#: elements (pairs x fields x pixels) per vectorised chunk of pair / triple computations
_CHUNK_ELEMENTS = 1 << 24
#: a shell holding less than this share of a channel's non-DC power counts as powerless in coherence
_SHELL_FLOOR = 1e-10


class CrossChannelConfig(FamilyConfig):
    """Parameters of the cross-channel family."""

    num_eigen: int = Field(3, ge=1, le=10, description="number of leading correlation eigenvalues stored (eigen_top_1..num_eigen)")
    eigen_floor: float = Field(1e-6, ge=1e-12, le=1e-2, description="floor on the smallest normalised eigenvalue in the log condition number")
    mi_bins: int = Field(16, ge=2, le=64, description="bins per channel of the mutual-information histogram")
    cmi_bins: int = Field(8, ge=2, le=16, description="bins per channel of the conditional-mutual-information histogram (B^3 joint cells)")
    coherence_low_cutoff: float = Field(0.25, gt=0.0, lt=1.0, description="low/mid shell boundary of the coherence groups, fraction of the Nyquist radius")
    coherence_high_cutoff: float = Field(0.5, gt=0.0, le=1.0, description="mid/high shell boundary of the coherence groups, fraction of the Nyquist radius")

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
    lo = v.amin(-1, keepdim=True)
    hi = v.amax(-1, keepdim=True)
    span = hi - lo
    pos = torch.where(span > 0, (v - lo) / torch.where(span > 0, span, torch.ones_like(span)), torch.zeros_like(v))
    return (pos * bins).floor().clamp_(0, bins - 1).long()


def _joint_entropy(labels: torch.Tensor, cells: int) -> torch.Tensor:
    """Entropy (nats) of the joint labels ``[..., K]`` with ``cells`` possible values: ``[...]``."""
    counts = torch.zeros(*labels.shape[:-1], cells, device=labels.device, dtype=torch.float32)
    counts.scatter_add_(-1, labels, torch.ones_like(labels, dtype=torch.float32))
    return entropy_from_counts(counts)


def _chunks(items: list, per_item: int):
    step = max(1, _CHUNK_ELEMENTS // max(per_item, 1))
    for lo in range(0, len(items), step):
        yield items[lo : lo + step]


def _spec(name, desc, units="dimensionless", conv="", min_channels=2, default=True):
    flag = "cross_channel.enabled" if default else f"cross_channel.include: {name}"
    return FeatureSpec(name=name, family="cross_channel", granularity="timestep", description=desc, units=units,
                       convention=conv, flag=flag, default=default, min_channels=min_channels)


_CORR = "Pearson over pixels, population convention; R_ii = 1; constant channel -> r = 0"
_EIG = "eigvalsh of the C x C Pearson matrix (population), clipped at 0, divided by their sum C (sum to 1), descending"
_MI = "plug-in histogram MI, B equal bins per channel over its [min, max] in the frame, nats (= sklearn mutual_info_score on the labels)"
_SPEC = 'Z = fft2(standardised channel, norm="ortho") on the full plane, DC excluded; integer shells n = round(|k|), n = 1..floor(min(H,W)/2)'


@register_family
class CrossChannelFamily(Family):
    """Channel correlation eigen-structure, correlation stats, (conditional) MI, shell coherence, phase locking."""

    name = "cross_channel"
    granularity = "timestep"
    config_model = CrossChannelConfig
    description = "Relations between the channels of each frame: correlation spectrum, information, coherence."

    def catalogue(self, cfg: CrossChannelConfig) -> list[FeatureSpec]:
        out = [
            _spec(f"cross_channel_eigen_top_{i}", f"{i}-th largest eigenvalue of the channel correlation matrix divided by C "
                  "(share of standardised variance on the i-th principal axis)", conv=_EIG, min_channels=max(2, i))
            for i in range(1, cfg.num_eigen + 1)
        ]
        lo, hi = cfg.coherence_low_cutoff, cfg.coherence_high_cutoff
        coh = ("shell coherence coh_n = (sum_shell Re Z_i Z_j*)^2 / (sum_shell |Z_i|^2 sum_shell |Z_j|^2) "
               "(= squared correlation of the two channels band-passed to shell n), averaged over the shells n {} "
               "and over channel pairs")
        coh_conv = (f"{_SPEC}; unweighted mean over shells; a shell where either channel holds < 1e-10 of its non-DC power "
                    "(float32 rounding noise) counts 0; an empty group is 0; independent noise gives ~ mean over shells of 1/#modes(n); 1 for a scaled copy")
        b, bc = cfg.mi_bins, cfg.cmi_bins
        out += [
            _spec("cross_channel_participation_ratio", "participation ratio 1 / sum_i lambda_i^2 of the normalised eigenvalues, "
                  "in [1, C] (effective number of independent channels)", conv=_EIG),
            _spec("cross_channel_eigen_entropy", "-sum_i lambda_i ln lambda_i / ln C of the normalised eigenvalues, in [0, 1]",
                  conv=f"{_EIG}; nats / ln C (0 ln 0 = 0)"),
            _spec("cross_channel_log_condition", "log10(lambda_max / max(lambda_min, floor)) of the normalised eigenvalues",
                  "log10", f"{_EIG}; floor = {cfg.eigen_floor:g} (so at most log10(1/floor))"),
            _spec("cross_channel_corr_mean", "mean over channel pairs i < j of the Pearson correlation r_ij", conv=_CORR),
            _spec("cross_channel_corr_abs_mean", "mean over channel pairs of |r_ij|", conv=_CORR),
            _spec("cross_channel_corr_max", "largest r_ij over channel pairs", conv=_CORR),
            _spec("cross_channel_corr_min", "smallest r_ij over channel pairs", conv=_CORR),
            _spec("cross_channel_corr_std", "std of r_ij over the C(C-1)/2 channel pairs (population)", conv=_CORR, min_channels=3),
            _spec("cross_channel_mi_mean", f"mean over channel pairs of the mutual information I(X;Y), {b} bins", "nats", _MI.replace("B equal", f"B = {b} equal")),
            _spec("cross_channel_mi_max", f"largest pairwise mutual information I(X;Y), {b} bins", "nats", _MI.replace("B equal", f"B = {b} equal")),
            _spec("cross_channel_cmi_mean", f"mean over channel pairs {{i, j}} and third channels k of I(X_i; X_j | X_k) = "
                  f"H(XZ) + H(YZ) - H(XYZ) - H(Z), {bc} bins", "nats",
                  f"plug-in histogram, B = {bc} equal bins per channel over its [min, max], B^3 joint cells, nats; clipped at 0; "
                  "equals the mean over ordered triples", min_channels=3),
            _spec("cross_channel_coherence_low", coh.format(f"< {lo} k_N"), conv=coh_conv),
            _spec("cross_channel_coherence_mid", coh.format(f"in [{lo} k_N, {hi} k_N)"), conv=coh_conv),
            _spec("cross_channel_coherence_high", coh.format(f">= {hi} k_N (up to floor(k_N))"), conv=coh_conv),
            _spec("cross_channel_plv", "phase-locking value |sum_k w_k exp(i(phi_i(k) - phi_j(k)))| / sum_k w_k with weights "
                  "w_k = |Z_i(k)| |Z_j(k)| over non-DC modes, mean over pairs; 1 when one channel is a real-filtered copy of the other",
                  conv=f"{_SPEC}; full plane (the sum is real: sum_k w_k cos dphi); = |r_ij| H W / sum_k |Z_i||Z_j| >= |r_ij|; "
                       "~1/sqrt(#modes) for independent channels"),
            # opt-ins
            _spec("cross_channel_mi_min", f"smallest pairwise mutual information, {b} bins", "nats", _MI, default=False),
            _spec("cross_channel_cmi_max", f"largest I(X_i; X_j | X_k) over pairs and third channels, {bc} bins", "nats",
                  "as cross_channel_cmi_mean", min_channels=3, default=False),
        ]
        return out

    def compute(self, x: torch.Tensor, cfg: CrossChannelConfig, names: Sequence[str]) -> dict[str, torch.Tensor]:
        n, c, h, w = x.shape
        hw = h * w
        dev = x.device
        u = x.to(torch.float32).reshape(n, c, hw)
        finite = torch.isfinite(u).flatten(1).all(1)
        u = torch.where(finite.view(-1, 1, 1), u, torch.zeros((), device=dev))
        want = set(names) if names else {s.name for s in self.catalogue(cfg)}
        zero = torch.zeros(n, device=dev)
        out: dict[str, torch.Tensor] = {}
        pairs = list(combinations(range(c), 2))

        # ---- correlation matrix and its eigenvalues
        z = standardize(u, dim=-1)
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
        out["cross_channel_log_condition"] = torch.log10(lam[:, 0].clamp_min(cfg.eigen_floor) / lam[:, -1].clamp_min(cfg.eigen_floor))

        pair_names = {"cross_channel_corr_mean", "cross_channel_corr_abs_mean", "cross_channel_corr_max", "cross_channel_corr_min",
                      "cross_channel_corr_std", "cross_channel_mi_mean", "cross_channel_mi_max", "cross_channel_mi_min",
                      "cross_channel_coherence_low", "cross_channel_coherence_mid", "cross_channel_coherence_high", "cross_channel_plv"}
        if not pairs:
            out.update({k: zero for k in pair_names | {"cross_channel_cmi_mean", "cross_channel_cmi_max"}})
            return self._finish(out, want, finite)
        I = torch.tensor([p[0] for p in pairs], device=dev)
        J = torch.tensor([p[1] for p in pairs], device=dev)
        r = R[:, I, J]
        out["cross_channel_corr_mean"] = r.mean(-1)
        out["cross_channel_corr_abs_mean"] = r.abs().mean(-1)
        out["cross_channel_corr_max"] = r.amax(-1)
        out["cross_channel_corr_min"] = r.amin(-1)
        out["cross_channel_corr_std"] = (r - r.mean(-1, keepdim=True)).square().mean(-1).sqrt()

        # ---- mutual information over pairs
        if want & {"cross_channel_mi_mean", "cross_channel_mi_max", "cross_channel_mi_min"}:
            B = cfg.mi_bins
            lab = bin_labels(u, B)  # [n, c, hw]
            hm = _joint_entropy(lab, B)  # [n, c]
            mis = []
            for chunk in _chunks(pairs, n * hw):
                ci = torch.tensor([p[0] for p in chunk], device=dev)
                cj = torch.tensor([p[1] for p in chunk], device=dev)
                hj = _joint_entropy(lab[:, ci] * B + lab[:, cj], B * B)
                mis.append((hm[:, ci] + hm[:, cj] - hj).clamp_min(0.0))
            mi = torch.cat(mis, dim=1)
            out["cross_channel_mi_mean"] = mi.mean(-1)
            out["cross_channel_mi_max"] = mi.amax(-1)
            out["cross_channel_mi_min"] = mi.amin(-1)

        # ---- conditional mutual information over (pair, third channel)
        triples = [(i, j, k) for (i, j) in pairs for k in range(c) if k != i and k != j]
        if triples and want & {"cross_channel_cmi_mean", "cross_channel_cmi_max"}:
            Bc = cfg.cmi_bins
            lab = bin_labels(u, Bc)
            cmis = []
            for chunk in _chunks(triples, n * hw):
                ti, tj, tk = (torch.tensor([t[a] for t in chunk], device=dev) for a in range(3))
                joint = (lab[:, ti] * Bc + lab[:, tj]) * Bc + lab[:, tk]  # [n, t, hw], cell (x, y, z)
                counts = torch.zeros(n, len(chunk), Bc ** 3, device=dev)
                counts.scatter_add_(-1, joint, torch.ones_like(joint, dtype=torch.float32))
                c4 = counts.view(n, len(chunk), Bc, Bc, Bc)
                h_xyz = entropy_from_counts(counts)
                h_xz = entropy_from_counts(c4.sum(3).flatten(2))
                h_yz = entropy_from_counts(c4.sum(2).flatten(2))
                h_z = entropy_from_counts(c4.sum((2, 3)))
                cmis.append((h_xz + h_yz - h_xyz - h_z).clamp_min(0.0))
            cmi = torch.cat(cmis, dim=1)
            out["cross_channel_cmi_mean"] = cmi.mean(-1)
            out["cross_channel_cmi_max"] = cmi.amax(-1)
        else:
            out["cross_channel_cmi_mean"] = out["cross_channel_cmi_max"] = zero

        # ---- shell coherence and phase locking
        if want & {"cross_channel_coherence_low", "cross_channel_coherence_mid", "cross_channel_coherence_high", "cross_channel_plv"}:
            geo = geometry(h, w, 1, dev)
            Z = torch.fft.fft2(z.view(n, c, h, w), norm="ortho").flatten(2) * geo.nondc  # [n, c, hw]
            A = Z.abs()
            pw = shell_sums(A.square().reshape(n * c, hw), geo).view(n, c, -1)  # [n, c, ns]
            live = pw > _SHELL_FLOOR * A.square().sum(-1, keepdim=True)  # shells above float32 rounding noise
            masks = [(m.to(dev), bool(m.any())) for m in
                     group_masks(geo.n_shells, geo.k_nyq, cfg.coherence_low_cutoff, cfg.coherence_high_cutoff, "cpu")]
            groups: list[list[torch.Tensor]] = [[], [], []]
            plvs = []
            for chunk in _chunks(pairs, 3 * n * hw):
                ci = torch.tensor([p[0] for p in chunk], device=dev)
                cj = torch.tensor([p[1] for p in chunk], device=dev)
                cross = (Z[:, ci] * Z[:, cj].conj()).real  # [n, p, hw]
                sx = shell_sums(cross.reshape(-1, hw), geo).view(n, len(chunk), -1)
                den = pw[:, ci] * pw[:, cj]
                ok = live[:, ci] & live[:, cj]
                coh = torch.where(ok, sx.square() / torch.where(ok, den, torch.ones_like(den)), torch.zeros_like(den)).clamp(0.0, 1.0)
                for g, (m, nonempty) in enumerate(masks):
                    groups[g].append(coh[..., m].mean(-1) if nonempty else torch.zeros(n, len(chunk), device=dev))
                wsum = (A[:, ci] * A[:, cj]).sum(-1)
                okw = wsum > 1e-20
                plvs.append(torch.where(okw, cross.sum(-1).abs() / torch.where(okw, wsum, torch.ones_like(wsum)), torch.zeros_like(wsum)).clamp(0.0, 1.0))
            for g, key in enumerate(("low", "mid", "high")):
                out[f"cross_channel_coherence_{key}"] = torch.cat(groups[g], dim=1).mean(-1)
            out["cross_channel_plv"] = torch.cat(plvs, dim=1).mean(-1)
        return self._finish(out, want, finite)

    @staticmethod
    def _finish(out: dict[str, torch.Tensor], want: set[str], finite: torch.Tensor) -> dict[str, torch.Tensor]:
        nan = torch.full((), float("nan"), device=finite.device)
        return {k: torch.where(finite, v.to(torch.float32), nan) for k, v in out.items() if k in want}
