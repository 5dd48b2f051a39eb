"""Plots (matplotlib, imported only when a plot is drawn): loss curves, hidden-state heatmaps,
the gradient norm through time that shows vanishing or exploding gradients, attention maps, and
CTC alignments (a spectrogram with each label's posterior beneath)."""

from rnnkit.viz.plots import (
    gradient_norms_through_time,
    plot_attention,
    plot_ctc_alignment,
    plot_gradient_norms,
    plot_hidden_states,
    plot_loss_curves,
)

__all__ = ["gradient_norms_through_time", "plot_attention", "plot_ctc_alignment", "plot_gradient_norms",
           "plot_hidden_states", "plot_loss_curves"]
