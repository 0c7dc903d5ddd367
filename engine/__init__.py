"""The deploy engine, pyinfra's lesson: read facts from the host, decide with pure functions
(facts + desired state -> actions), execute only what differs. See docs/deploy.md."""
