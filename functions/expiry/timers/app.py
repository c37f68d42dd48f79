"""DynamoDB stream -> expiry time wheel: an authorization puts its warning there, its warning its expiry, an intent its expiry."""

from aws_lambda_powertools.utilities.batch import EventType
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from tahsil.api import workers
from tahsil.kernel.events import is_event_image
from tahsil.payments import expiry


def start(record: DynamoDBRecord) -> None:
    image = record.dynamodb.new_image if record.dynamodb else None
    if image and is_event_image(image):
        expiry.start_timer({"type": image["type"], "payload": image["payload"]})


handler = workers.batch_handler(EventType.DynamoDBStreams, start)
