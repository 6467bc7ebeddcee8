/**
 * Whether a suite that needs a real service may skip when it is missing. On a laptop it skips
 * loudly; in CI (`.ci/run` sets BACKHAUL_REQUIRE_SERVICES=1) a missing service is a failure.
 */
export const servicesRequired = process.env.BACKHAUL_REQUIRE_SERVICES === '1';
