# Refit every recorded fit of `synk crosscheck-export` with R's reference implementations and write
# what R finds: one row per method, contrast, outcome, timepoint and column (estimate, std_error,
# ci_low, ci_high, p_value, p_adjusted, e_value, e_value_ci, mdd, rate, weights), with the tolerance
# class of the number ("closed" for closed forms, "iterative" for iterative fits). The comparison
# with the platform's numbers is tests/crosscheck/test_against_r.py; docs/crosscheck.md says why
# each call is the one that matches the platform's definition.
#
# Rscript tests/crosscheck/refit.R <export folder> <out.csv>
suppressPackageStartupMessages({
  library(jsonlite)
  library(sandwich)
  library(lme4)
  library(clubSandwich)
  library(ordinal)
  library(mice)
  library(survival)
  library(metafor)
})

args <- commandArgs(trailingOnly = TRUE)
export <- args[[1]]
out_path <- args[[2]]
rows <- list()

emit <- function(method, key, values, kind) {
  for (column in names(values)) {
    rows[[length(rows) + 1]] <<- data.frame(
      method = method, contrast = key$contrast, outcome = key$outcome, timepoint = key$timepoint,
      column = column, value = unname(values[[column]]), kind = kind, stringsAsFactors = FALSE
    )
  }
}

fits <- function(method) {
  folder <- file.path(export, method)
  if (!dir.exists(folder)) return(list())
  lapply(sort(list.files(folder, pattern = "\\.json$", full.names = TRUE)), function(path) {
    spec <- fromJSON(path, simplifyVector = TRUE)
    frame <- read.csv(sub("\\.json$", ".csv", path), check.names = FALSE, stringsAsFactors = FALSE,
                      colClasses = c(.cluster = "character"))
    list(spec = spec, frame = frame)
  })
}

t_inference <- function(estimate, se, df, scale = 1) {
  q <- if (is.finite(df)) qt(0.975, df) else qnorm(0.975)
  p <- if (is.finite(df)) 2 * pt(-abs(estimate / se), df) else 2 * pnorm(-abs(estimate / se))
  c(estimate = estimate * scale, std_error = se * scale,
    ci_low = (estimate - q * se) * scale, ci_high = (estimate + q * se) * scale, p_value = p)
}

# lm on the design as built, with sandwich's robust variance of the recorded type: HC3, or
# vcovCL type HC1 by site (statsmodels' "cluster": G/(G-1) (N-1)/(N-K)) with t on G - 1 df.
robust_lm <- function(spec, frame, weights = NULL) {
  X <- as.matrix(frame[, spec$x, drop = FALSE])
  y <- frame[[".y"]]
  fit <- if (is.null(weights)) lm(y ~ X - 1) else lm(y ~ X - 1, weights = weights)
  j <- match(spec$coefficient, spec$x)
  if (spec$variance == "HC3") {
    V <- vcovHC(fit, type = "HC3")
    df <- fit$df.residual
  } else {
    V <- vcovCL(fit, cluster = frame[[".cluster"]], type = "HC1")
    df <- length(unique(frame[[".cluster"]])) - 1
  }
  t_inference(unname(coef(fit)[j]), sqrt(V[j, j]), df, if (is.null(spec$scale)) 1 else spec$scale)
}

estimates_all <- read.csv(file.path(export, "estimates.csv"), stringsAsFactors = FALSE)

key_of <- function(spec) list(contrast = spec$contrast, outcome = spec$outcome, timepoint = spec$timepoint)

# ANCOVA, responders (linear probability model, percentage points), synergy (the A x B term).
for (method in c("ancova", "responder", "synergy")) {
  published <- if (method == "synergy") "ancova" else method
  for (f in fits(method)) emit(published, key_of(f$spec), robust_lm(f$spec, f$frame), "closed")
}

# site_spread: metafor's DerSimonian-Laird tau of the sites' own ANCOVA estimates (rma, method "DL"; its
# tau^2 is clipped at 0 as the platform's).
for (f in fits("site_spread")) {
  d <- f$frame
  if (nrow(d) < 2) next  # fewer than two sites with their own estimate: no spread (the platform's NaN)
  fit <- rma(yi = d$estimate, sei = d$std_error, method = "DL")
  emit("ancova", key_of(f$spec), c(site_spread = sqrt(fit$tau2)), "closed")
}

# IPTW: the propensity model refitted by glm (binomial), stabilized ATE weights truncated as the
# platform's, then the weighted lm with the same robust variance.
for (f in fits("iptw")) {
  s <- f$spec; d <- f$frame
  P <- as.matrix(d[, s$propensity, drop = FALSE])
  treated <- d[[".treated"]]
  ps <- glm(treated ~ P - 1, family = binomial(), control = glm.control(epsilon = 1e-14, maxit = 100))
  e <- pmin(pmax(fitted(ps), s$propensity_clip), 1 - s$propensity_clip)
  share <- mean(treated)
  w <- pmin(ifelse(treated == 1, share / e, (1 - share) / (1 - e)), s$truncation)
  values <- robust_lm(s, d, weights = w)
  emit("iptw", key_of(s), c(values, weights = max(abs(w - d[[".weight"]]) / d[[".weight"]])), "iterative")
}

# AIPW, cross-fitted as the platform does it (pipeline/models/aipw.py): the recorded folds (`.fold`: seeded,
# stratified by group); per fold, a logistic propensity (glm) and an lm per arm fitted on the other folds
# (a term aliased within a fold's arm: coefficient NA, predicted as 0, as lm's predict), predicted for the
# fold; each arm's predictions clipped to the change that arm observed; patients with a propensity outside
# trim to 1 - trim left out; psi per patient kept, its mean and the influence-function SE (clustered by
# site where the platform clusters).
for (f in fits("aipw")) {
  s <- f$spec; d <- f$frame
  X <- as.matrix(d[, s$x, drop = FALSE]); y <- d[[s$y]]; t <- d[[s$treated]]; fold <- d[[".fold"]]
  e <- m1 <- m0 <- rep(NA_real_, nrow(d))
  for (k in sort(unique(fold))) {
    train <- fold != k; test <- fold == k
    ps <- suppressWarnings(glm(t[train] ~ X[train, , drop = FALSE] - 1, family = binomial(),
                               control = glm.control(epsilon = 1e-14, maxit = 200)))
    b <- coef(ps); b[is.na(b)] <- 0
    e[test] <- plogis(drop(X[test, , drop = FALSE] %*% b))
    # A fold's propensity model that did not converge (separation): no maximum, its fitted values are where
    # each optimizer stopped; the rest is evaluated at the platform's (docs/crosscheck.md).
    if (!isTRUE(s$propensity_converged)) e[test] <- d[[".propensity"]][test]
    for (g in c(1, 0)) {
      arm <- train & t == g
      b <- coef(lm(y[arm] ~ X[arm, , drop = FALSE] - 1))
      b[is.na(b)] <- 0
      predicted <- drop(X[test, , drop = FALSE] %*% b)
      if (g == 1) m1[test] <- predicted else m0[test] <- predicted
    }
  }
  m1 <- pmin(pmax(m1, min(y[t == 1])), max(y[t == 1]))
  m0 <- pmin(pmax(m0, min(y[t == 0])), max(y[t == 0]))
  kept <- e >= s$trim & e <= 1 - s$trim
  psi <- (m1 - m0 + t * (y - m1) / e - (1 - t) * (y - m0) / (1 - e))[kept]
  n <- length(psi); estimate <- mean(psi)
  if (grepl("iid", s$variance)) {
    se <- sd(psi) / sqrt(n); df <- n - 1
  } else {
    sums <- tapply(psi - estimate, d[[".cluster"]][kept], sum); g <- length(sums)
    se <- sqrt(g / (g - 1) * sum(sums^2)) / n; df <- g - 1
  }
  values <- t_inference(estimate, se, df)
  # Where AIPW's diagnostics fail the platform publishes the estimate and its SE, no interval or p-value.
  published <- estimates_all[estimates_all$method == "aipw" & estimates_all$contrast == s$contrast &
                               estimates_all$outcome == s$outcome & estimates_all$timepoint == s$timepoint, ]
  if (nrow(published) == 1 && grepl("no interval or p-value published", published$note)) {
    values <- values[c("estimate", "std_error")]
  }
  emit("aipw", key_of(s), values, "iterative")
}

# The mixed model: lme4::lmer (REML, random intercept per patient) and clubSandwich::vcovCR type CR1
# (the working model's V, clustered as the platform clusters: G/(G-1)); normal p and CI.
for (f in fits("mixed")) {
  s <- f$spec; d <- f$frame
  if (s$random != "intercept") next
  X <- as.matrix(d[, s$x, drop = FALSE]); y <- d[[".y"]]; group <- factor(d[[".group"]])
  control <- lmerControl(check.rankX = "ignore", check.nobs.vs.nlev = "ignore", check.nobs.vs.rankZ = "ignore",
                         check.nlev.gtr.1 = "ignore", check.nobs.vs.nRE = "ignore",
                         optCtrl = list(ftol_abs = 1e-14, xtol_abs = 1e-12, ftol_rel = 1e-15, xtol_rel = 1e-12))
  if (isTRUE(s$diverged)) {
    # No finite REML optimum (the patient variance diverges; the platform flags the fit as not converged and
    # stops at its bound): lme4's own deviance function and model, at the platform's variance ratio.
    lmod <- lFormula(y ~ X - 1 + (1 | group), REML = TRUE, control = control)
    devfun <- do.call(mkLmerDevfun, lmod)
    theta <- sqrt(s$variance_ratio)
    opt <- list(par = theta, fval = devfun(theta), conv = 0, message = "at the platform's variance ratio")
    fit <- mkMerMod(environment(devfun), opt, lmod$reTrms, fr = lmod$fr)
  } else {
    fit <- lmer(y ~ X - 1 + (1 | group), REML = TRUE, control = control)
  }
  V <- as.matrix(vcovCR(fit, cluster = factor(d[[".cluster"]]), type = "CR1"))
  for (timepoint in names(s$coefficients)) {
    j <- match(s$coefficients[[timepoint]], s$x)
    key <- key_of(s); key$timepoint <- timepoint
    method <- if (is.null(s$published)) "mixed" else s$published
    values <- t_inference(unname(fixef(fit)[j]), sqrt(V[j, j]), Inf)
    if (isTRUE(s$exponentiate)) {  # units per session on the log scale: the row is the ratio
      values[c("estimate", "ci_low", "ci_high")] <- exp(values[c("estimate", "ci_low", "ci_high")])
    }
    emit(method, key, values, "iterative")
  }
}

# House-Brackmann: ordinal::clm, proportional-odds logit; the odds ratio of a better grade exp(sign beta).
for (f in fits("ordinal")) {
  s <- f$spec; d <- f$frame
  X <- as.matrix(d[, s$x, drop = FALSE])
  grade <- factor(d[[".grade"]], levels = sort(unique(d[[".grade"]])), ordered = TRUE)
  fit <- clm(grade ~ X, link = "logit", control = clm.control(gradTol = 1e-10, maxIter = 500))
  name <- paste0("X", s$coefficient)
  beta <- unname(coef(fit)[name]); se <- sqrt(vcov(fit)[name, name])
  log_or <- s$sign * beta
  emit("ordinal", key_of(s), c(
    estimate = exp(log_or), std_error = se, ci_low = exp(log_or - qnorm(0.975) * se),
    ci_high = exp(log_or + qnorm(0.975) * se), p_value = 2 * pnorm(-abs(beta / se))
  ), "iterative")
}

# MICE: the ANCOVA (lm + vcovHC of the recorded type) on each of the platform's completed data sets,
# pooled by mice::pool.scalar (Rubin's rules, Barnard-Rubin df on the complete-data df).
for (f in fits("mice")) {
  s <- f$spec; d <- f$frame
  for (timepoint in names(s$y)) {
    per <- lapply(split(d, d[[".imp"]]), function(imp) {
      spec <- list(x = s$x, coefficient = s$coefficient,
                   variance = if (grepl("HC3", s$variance)) "HC3" else "cluster")
      imp[[".y"]] <- imp[[s$y[[timepoint]]]]
      values <- robust_lm(spec, imp)
      c(q = values[["estimate"]], u = values[["std_error"]]^2)
    })
    Q <- sapply(per, `[[`, "q"); U <- sapply(per, `[[`, "u")
    pooled <- pool.scalar(Q, U, n = s$complete_df + 1, k = 1)
    key <- key_of(s); key$timepoint <- timepoint
    emit("mice", key, t_inference(pooled$qbar, sqrt(pooled$t), pooled$df), "closed")
  }
}

# Re-injection: survival::coxph, Efron ties, session-number windows as strata (against BoNT alone),
# cluster() by patient for the robust variance; the hazard ratio, the SE of its log, normal CI and p.
for (f in fits("phreg")) {
  s <- f$spec; d <- f$frame
  X <- as.matrix(d[, s$x, drop = FALSE])
  fit <- coxph(Surv(d[[".time"]], d[[".event"]]) ~ X + strata(d[[".strata"]]), ties = "efron",
               cluster = d[[".cluster"]], control = coxph.control(eps = 1e-12, iter.max = 100))
  name <- paste0("X", s$coefficient)
  beta <- unname(coef(fit)[name]); se <- sqrt(vcov(fit)[name, name])
  q <- qnorm(0.975)
  emit(s$published, key_of(s), c(estimate = exp(beta), std_error = se, ci_low = exp(beta - q * se),
                                 ci_high = exp(beta + q * se), p_value = 2 * pnorm(-abs(beta / se))), "iterative")
}

# Days between injections: survival::survreg, log-normal AFT of every gap, the open last one censored,
# robust = TRUE with cluster() by patient (dfbeta sandwich) times G/(G-1) as the platform; the time ratio.
for (f in fits("aft")) {
  s <- f$spec; d <- f$frame
  X <- as.matrix(d[, s$x, drop = FALSE])
  cluster <- factor(d[[".cluster"]])
  fit <- survreg(Surv(d[[".time"]], d[[".event"]]) ~ X - 1, dist = "lognormal", robust = TRUE,
                 cluster = cluster, control = survreg.control(rel.tolerance = 1e-12, maxiter = 100))
  name <- paste0("X", s$coefficient)
  g <- nlevels(cluster)
  beta <- unname(coef(fit)[name]); se <- sqrt(vcov(fit)[name, name] * g / (g - 1))
  q <- qnorm(0.975)
  emit(s$published, key_of(s), c(estimate = exp(beta), std_error = se, ci_low = exp(beta - q * se),
                                 ci_high = exp(beta + q * se), p_value = 2 * pnorm(-abs(beta / se))), "iterative")
}

estimates <- read.csv(file.path(export, "estimates.csv"), stringsAsFactors = FALSE)

# The unadjusted difference: Welch's t test (t.test, unequal variances) on the cell's changes.
for (f in fits("sensitivity")) {
  d <- f$frame
  if (min(table(factor(d$treated, levels = c(0, 1)))) < 2) next
  test <- t.test(d$change[d$treated == 1], d$change[d$treated == 0], var.equal = FALSE)
  estimate <- unname(test$estimate[1] - test$estimate[2])
  emit("unadjusted", key_of(f$spec), c(estimate = estimate, std_error = unname(test$stderr),
                                       ci_low = test$conf.int[1], ci_high = test$conf.int[2],
                                       p_value = test$p.value), "closed")
}

# E-values (VanderWeele and Ding 2017; the MD approximation of EValue::evalues.MD) and the minimum
# detectable difference from their formulas, on each method's estimate and SE.
e_value_rr <- function(rr) { rr <- ifelse(rr < 1, 1 / rr, rr); rr + sqrt(rr * (rr - 1)) }
for (f in fits("sensitivity")) {
  s <- f$spec; d <- f$frame
  groups <- split(d$change, d$treated)
  sd_pooled <- sqrt(sum(sapply(groups, function(g) sum((g - mean(g))^2))) / (nrow(d) - 2))
  cell <- estimates[estimates$contrast == s$contrast & estimates$outcome == s$outcome &
                      estimates$timepoint == s$timepoint & is.finite(estimates$std_error) &
                      !(estimates$method %in% c("responder", "ordinal")), ]
  for (i in seq_len(nrow(cell))) {
    est <- cell$estimate[i]; se <- cell$std_error[i]
    d_std <- est / sd_pooled; se_d <- se / sd_pooled
    low <- exp(0.91 * d_std - 1.78 * se_d); high <- exp(0.91 * d_std + 1.78 * se_d)
    e_ci <- if (!is.finite(cell$ci_low[i])) NA_real_ else if (low <= 1 && 1 <= high) 1 else e_value_rr(if (d_std > 0) low else high)
    emit(cell$method[i], key_of(s), c(e_value = e_value_rr(exp(0.91 * d_std)), e_value_ci = e_ci), "closed")
  }
}
# The minimum detectable difference of every row that has one (a difference of means: not the responders,
# the odds ratios or the hazard ratios), at the run's power.
power <- fromJSON(file.path(export, "run.json"))$power
has_mdd <- is.finite(estimates$std_error) & !(estimates$method %in% c("responder", "ordinal", "phreg", "phreg_vs_bont_alone", "aft", "aft_vs_bont_alone", "mixed_log", "mixed_log_vs_bont_alone"))
for (i in which(has_mdd)) {
  row <- estimates[i, ]
  emit(row$method, list(contrast = row$contrast, outcome = row$outcome, timepoint = row$timepoint),
       c(mdd = (qnorm(0.975) + qnorm(power)) * row$std_error), "closed")
}

# Multiplicity: p.adjust(method = "holm") over each family as the contract defines it (one method,
# contrast and timepoint; the primary outcome alone at the full level; the secondaries by Holm, at
# least the primary's; each composite's subscores by Holm, at least their composite's).
gated <- function(p, gate) if (!is.finite(gate)) rep(NA_real_, length(p)) else pmax(p.adjust(p, "holm"), gate)
for (f in fits("multiplicity")) {
  s <- f$spec; d <- f$frame
  d <- d[d$eligible %in% c(TRUE, "True") & is.finite(d$p_value), ]
  parents <- s$parents
  for (family in split(d, list(d$method, d$contrast, d$timepoint), drop = TRUE)) {
    p <- setNames(family$p_value, family$outcome)
    adjusted <- setNames(rep(NA_real_, length(p)), names(p))
    gate <- if (s$primary %in% names(p)) p[[s$primary]] else NA_real_
    if (s$primary %in% names(p)) adjusted[[s$primary]] <- gate
    is_sub <- names(p) %in% names(parents) & names(p) != s$primary
    secondary <- names(p)[names(p) != s$primary & !is_sub]
    if (length(secondary)) adjusted[secondary] <- gated(p[secondary], gate)
    subs <- names(p)[is_sub]
    for (composite in unique(unlist(parents[subs]))) {
      mine <- subs[unlist(parents[subs]) == composite]
      gate_c <- if (composite %in% names(adjusted)) adjusted[[composite]] else NA_real_
      adjusted[mine] <- gated(p[mine], gate_c)
    }
    for (i in seq_len(nrow(family))) {
      emit(family$method[i], list(contrast = family$contrast[i], outcome = family$outcome[i],
                                  timepoint = family$timepoint[i]),
           c(p_adjusted = adjusted[[family$outcome[i]]]), "closed")
    }
  }
}
for (f in fits("multiplicity_holm")) {
  d <- f$frame
  adjusted <- p.adjust(d$p_value, "holm")
  for (i in seq_len(nrow(d))) {
    emit(d$method[i], list(contrast = d$contrast[i], outcome = d$outcome[i], timepoint = d$timepoint[i]),
         c(p_adjusted = adjusted[i]), "closed")
  }
}

# Complication rates: binom.test's exact (Clopper-Pearson) interval.
rates_path <- file.path(export, "complication_rates.csv")
if (file.exists(rates_path)) {
  rates <- read.csv(rates_path, stringsAsFactors = FALSE)
  for (i in seq_len(nrow(rates))) {
    k <- rates$patients_with[i]; n <- rates$patients_at_risk[i]
    ci <- binom.test(k, n)$conf.int
    emit("complication_rate", list(contrast = rates$grouping[i], outcome = rates$code[i], timepoint = rates$group_code[i]),
         c(rate = k / n, ci_low = ci[1], ci_high = ci[2]), "closed")
  }
}

write.csv(do.call(rbind, rows), out_path, row.names = FALSE)
