# Average detector frames of the newest run with an area detector.
import numpy as np

from databroker import Broker

db = Broker.named("csx")
for h in db(plan_name="count"):
    if "cam" in h.fields():
        break
images = db.get_images(h, "cam")
print("frames", len(images), "shape", images[0].shape)
print("mean_of_means", float(np.mean([np.mean(im) for im in images])))
stack = np.stack(list(h.data("cam")))
print("stack_sum", int(stack.sum()))
