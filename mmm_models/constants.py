"""Names of model variables and dimensions, kept in one place."""

INTERCEPT = "intercept"
MEAN_LEVEL = "mean_level"  # the mean of mu over the observed weeks; the intercept derives from it
TREND_COEF = "trend_coef"
FOURIER_COEF = "fourier_coef"
CONTROL_COEF = "control_coef"
EVENT_COEF = "event_coef"
CHANNEL_EFFECT = "channel_effect"  # the parameter the prior is stated on (share, ROAS or coefficient)
CHANNEL_COEF = "channel_coef"  # effect at full saturation, in scaled target units
NOISE_SIGMA = "noise_sigma"
NOISE_NU = "noise_nu"
LOG_LIKELIHOOD = "log_likelihood"
LIFT_LIKELIHOOD = "lift_likelihood"
INTERCEPT_GP_COEF = "intercept_gp_coef"  # HSGP weights of the time-varying baseline
MEDIA_GP_COEF = "media_gp_coef"  # HSGP weights of each media multiplier's log
MEDIA_LOG_MULTIPLIER_LATEST = "media_log_multiplier_latest"  # log multiplier in the last training week

CHANNEL = "channel"
CONTROL = "control"
EVENT = "event"
FOURIER = "fourier"
TREND_TERM = "trend_term"
GP_BASIS = "gp_basis"
MEDIA_MULTIPLIER = "media_multiplier"
MARKET = "market"
MEDIATOR_COEF = "mediator_coef"  # a mediator's effect on the target, per unit of scaled mediator
MEDIATOR_CHANNEL_COEF = "mediator_channel_coef"  # (mediator, channel) lift of the mediator at full saturation
MEDIATOR_LINK_COEF = "mediator_link_coef"  # the sampled, non-zero entries of MEDIATOR_CHANNEL_COEF
MEDIATOR_MEAN_LEVEL = "mediator_mean_level"
MEDIATOR_INTERCEPT = "mediator_intercept"
MEDIATOR_TREND_COEF = "mediator_trend_coef"
MEDIATOR_FOURIER_COEF = "mediator_fourier_coef"
MEDIATOR_SIGMA = "mediator_sigma"
MEDIATOR_LIKELIHOOD = "mediator_likelihood"
MEDIATOR = "mediator"
MEDIATOR_LINK = "mediator_link"
