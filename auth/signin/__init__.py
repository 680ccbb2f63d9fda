"""The sign-in, as the login hook and the /login page run it.

rules (the decision: pure, facts in, a verdict or the next fact needed out), facts (what the
database holds for it, read in one statement), flow (SignIn, the in-process API: gathers
the facts the rules ask for and carries out the verdict), breached (rule 4 carried out),
second_step (the continuation and the second factor), answer (what a step answers), and
what it keeps between attempts: lockout (per account), bans (per address), continuations,
keyed_lock (attempts on one address take turns).
"""
