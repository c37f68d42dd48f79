"""DynamoDB stream -> deliveries: each new event row gets one delivery per subscribed endpoint."""

from aws_lambda_powertools.utilities.batch import EventType
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord, DynamoDBRecordEventName

from tahsil.api import workers
from tahsil.kernel.events import is_event_image
from tahsil.webhooks import fanout


def fan_out(record: DynamoDBRecord) -> None:
    image = record.dynamodb.new_image if record.dynamodb else None
    if record.event_name == DynamoDBRecordEventName.INSERT and is_event_image(image):
        count = fanout.fan_out({"pk": image["pk"], "sk": image["sk"]})
        workers.logger.info("event fanned out", extra={"event_id": image.get("id"), "deliveries": count})


handler = workers.batch_handler(EventType.DynamoDBStreams, fan_out)
