"""The steps of the "finish image" state machine (infra/finish_image.asl.json).

One module per task, so each function imports only what its step uses: Fetch and the
compose steps never load image code, Check loads OpenCV and not Pillow, Deliver loads
the marketplace code, Finish only the contact sheet. Every step is written so that
running it twice (Step Functions retries, duplicate deliveries, the sweeper) has the
effect of running it once: writes are conditional on the state they expect, and a
step that finds its work already done says so and ends.
"""
