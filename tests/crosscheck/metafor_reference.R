# metafor's numbers for the network's two-stage pooling (pipeline/network/meta_analysis.py), as JSON.
#
#   Rscript metafor_reference.R IN.csv OUT.json [THRESHOLDS]      # IN.csv: id,yi,vi (one row per site)
#   Rscript metafor_reference.R --dataset dat.bcg OUT.json [THRESHOLDS]
#   Rscript metafor_reference.R --dataset dat.normand1999 OUT.json [THRESHOLDS]
#
# A data set is metafor's own (through metadat): its raw columns are written too, with escalc()'s yi and vi
# (dat.bcg: log risk ratios, measure "RR"; dat.normand1999: mean differences, measure "MD"), so the Python
# test can compute yi and vi itself and compare. THRESHOLDS: rma()'s Fisher-scoring threshold (metafor's
# default 1e-5), or several separated by commas (one fit each, in "fits", so R starts once); confint()'s
# root tolerance is 1e-12 so that its bounds are exact to the test's 1e-6.
# Written out: rma(yi, vi, method = "REML", test = "knha") and the same with test = "adhoc" (the modified
# Hartung-Knapp): estimate, se, ci, p, tau2, confint() tau2 bounds, I2, QE and its p, predict() pi bounds;
# rma(method = "EE") (fixed effect); leave1out() of the knha fit.
suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
if (length(args) >= 3 && args[1] == "--dataset") {
  dataset <- args[2]
  out <- args[3]
  thresholds <- if (length(args) >= 4) args[4] else "1e-5"
  raw <- get(dataset)
  if (dataset == "dat.bcg") {
    es <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = raw)
    raw <- raw[, c("trial", "tpos", "tneg", "cpos", "cneg")]
    ids <- as.character(raw$trial)
  } else if (dataset == "dat.normand1999") {
    es <- escalc(measure = "MD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = raw)
    raw <- raw[, c("study", "n1i", "m1i", "sd1i", "n2i", "m2i", "sd2i")]
    ids <- as.character(raw$study)
  } else {
    stop(paste("unknown data set", dataset))
  }
  yi <- as.numeric(es$yi)
  vi <- as.numeric(es$vi)
} else if (length(args) >= 2) {
  data <- read.csv(args[1], colClasses = c(id = "character"))
  out <- args[2]
  thresholds <- if (length(args) >= 3) args[3] else "1e-5"
  raw <- NULL
  ids <- data$id
  yi <- as.numeric(data$yi)
  vi <- as.numeric(data$vi)
} else {
  stop("usage: metafor_reference.R IN.csv OUT.json [THRESHOLDS] | --dataset NAME OUT.json [THRESHOLDS]")
}

summary_of <- function(test, threshold) {
  fit <- rma(yi, vi, method = "REML", test = test, control = list(threshold = threshold))
  ci <- confint(fit, control = list(tol = 1e-12))
  pred <- predict(fit)
  list(
    estimate = as.numeric(fit$beta), se = fit$se, ci_low = fit$ci.lb, ci_high = fit$ci.ub, p_value = fit$pval,
    tau2 = fit$tau2, tau2_ci_low = ci$random["tau^2", "ci.lb"], tau2_ci_high = ci$random["tau^2", "ci.ub"],
    I2 = fit$I2, QE = fit$QE, QEp = fit$QEp, pi_low = pred$pi.lb, pi_high = pred$pi.ub
  )
}

fits_at <- function(threshold) {
  fixed <- rma(yi, vi, method = "EE")
  left <- leave1out(rma(yi, vi, method = "REML", test = "knha", control = list(threshold = threshold)))
  list(
    threshold = threshold,
    knha = summary_of("knha", threshold),
    adhoc = summary_of("adhoc", threshold),
    fixed = list(estimate = as.numeric(fixed$beta), se = fixed$se, ci_low = fixed$ci.lb, ci_high = fixed$ci.ub,
                 p_value = fixed$pval),
    leave1out = list(estimate = as.numeric(left$estimate), se = as.numeric(left$se), ci_low = as.numeric(left$ci.lb),
                     ci_high = as.numeric(left$ci.ub), tau2 = as.numeric(left$tau2), I2 = as.numeric(left$I2),
                     QE = as.numeric(left$Q))
  )
}

result <- list(
  metafor_version = as.character(packageVersion("metafor")),
  id = ids, yi = yi, vi = vi,
  raw = raw,
  fits = lapply(as.numeric(strsplit(thresholds, ",")[[1]]), fits_at)
)
writeLines(toJSON(result, auto_unbox = TRUE, digits = NA, na = "null"), out)
