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
