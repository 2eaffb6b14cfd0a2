# An independent implementation of the target trial's weights and contrast (tests/models/test_target_trial.py):
# the censoring model refitted with glm, the stabilized weights recomputed, the weighted regression fitted with lm
# and its variance clustered by patient with sandwich::vcovCL. Prints the strategy's coefficient and its SE.
# Rscript target_trial_check.R FOLDER TRUNCATION  (FOLDER holds sessions.csv and clones.csv)
args <- commandArgs(TRUE)
s <- read.csv(file.path(args[1], "sessions.csv"))
clones <- read.csv(file.path(args[1], "clones.csv"))
truncation <- as.numeric(args[2])
at_risk <- s$sessions >= 2 & !is.na(s$latest)
fit <- glm(surgery_90d ~ latest + fall + sessions + units_so_far + years_since_onset + age + female,
           family = binomial, data = s[at_risk, ])
s$p <- NA
s$p[at_risk] <- pmin(pmax(fitted(fit), 1e-6), 1 - 1e-6)
share <- mean(s$surgery_90d[at_risk])
a <- clones[clones$arm == 1, ]
a$w <- share / s$p[match(paste(a$patient_id, a$t0), paste(s$patient_id, s$day))]
b <- clones[clones$arm == 0, ]
b$w <- vapply(seq_len(nrow(b)), function(i) {
  end <- if (is.na(b$outcome_day[i])) b$t0[i] + 365 else b$outcome_day[i]
  k <- s$patient_id == b$patient_id[i] & s$day >= b$t0[i] & s$day < end
  prod((1 - share) / (1 - s$p[k]))
}, numeric(1))
d <- rbind(a, b)
d <- d[d$censored == 0 & !is.na(d$y), ]
d$w <- pmin(d$w, truncation)
m <- lm(y ~ arm + latest, data = d, weights = w)
v <- sandwich::vcovCL(m, cluster = ~patient_id, type = "HC1")
cat(sprintf("%.10f %.10f\n", coef(m)[["arm"]], sqrt(v["arm", "arm"])))
